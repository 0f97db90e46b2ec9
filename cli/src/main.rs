//! `imgfn`: run any imgfn operation, or a pipeline JSON, on local files.
//!
//! ```text
//! imgfn thumbnail --width 256 --height 256 in.jpg out.jpg
//! imgfn pipeline ops.json in.jpg out.webp
//! ```
//!
//! Every subcommand builds the same [`Pipeline`] the HTTP API accepts, so the CLI exercises exactly
//! the code the Lambda functions run. On failure the error code (e.g. `corrupt_image`) is printed
//! and the exit status is 2 for bad input or parameters, 1 for anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use image_ops::{Assets, Category, Limits, Output, Pipeline};
use serde_json::{json, Map, Value};

#[derive(Debug, Parser)]
#[command(name = "imgfn", version, about = "imgfn image operations on local files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resize to fit a box (alias: resize).
    #[command(alias = "resize")]
    Thumbnail {
        #[arg(long)]
        width: Option<u32>,
        #[arg(long)]
        height: Option<u32>,
        /// inside | cover | fill
        #[arg(long)]
        fit: Option<String>,
        /// Crop anchor for cover: center, top, bottom_right, ...
        #[arg(long)]
        gravity: Option<String>,
        #[arg(long)]
        upscale: bool,
        #[command(flatten)]
        io: Io,
    },
    /// Draw a text watermark.
    WatermarkText {
        #[arg(long)]
        text: String,
        /// A TTF/OTF file (default: the bundled DejaVu Sans).
        #[arg(long)]
        font: Option<PathBuf>,
        /// Font size in px (48) or percent of the image width ("4%").
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        color: Option<String>,
        #[arg(long)]
        opacity: Option<f32>,
        #[command(flatten)]
        place: Place,
        /// Repeat across the image with this spacing in px.
        #[arg(long)]
        tile: Option<u32>,
        #[command(flatten)]
        io: Io,
    },
    /// Overlay an image (logo) watermark.
    WatermarkImage {
        /// The overlay image (PNG/WebP with alpha).
        #[arg(long)]
        image: PathBuf,
        /// Overlay width as a fraction of the image width.
        #[arg(long)]
        scale: Option<f32>,
        #[arg(long)]
        opacity: Option<f32>,
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        tile: Option<u32>,
        #[command(flatten)]
        io: Io,
    },
    /// Round the corners (transparent, or filled with --background).
    RoundCorners {
        /// Radius in px (40) or percent of the shorter side ("10%").
        #[arg(long)]
        radius: String,
        #[arg(long)]
        background: Option<String>,
        #[command(flatten)]
        io: Io,
    },
    /// Overlay a QR code.
    Qr {
        #[arg(long)]
        data: String,
        /// Side in px, quiet zone included.
        #[arg(long)]
        size: Option<u32>,
        #[arg(long)]
        quiet_zone: Option<u32>,
        /// L | M | Q | H
        #[arg(long)]
        ec_level: Option<String>,
        #[arg(long)]
        dark: Option<String>,
        #[arg(long)]
        light: Option<String>,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        io: Io,
    },
    /// Convert to the format of OUTPUT's extension (or --format).
    Convert {
        #[command(flatten)]
        io: Io,
    },
    /// Cut into tiles: OUTPUT is a folder that receives r<row>-c<col>.<ext> and manifest.json.
    Slice {
        #[arg(long)]
        rows: Option<u32>,
        #[arg(long)]
        cols: Option<u32>,
        #[arg(long)]
        tile_width: Option<u32>,
        #[arg(long)]
        tile_height: Option<u32>,
        #[command(flatten)]
        io: Io,
    },
    /// Run a pipeline JSON file ({"ops": [...], "output": {...}}). Asset names in it (fonts,
    /// overlay images) are file paths, relative to the JSON file.
    Pipeline {
        /// The pipeline JSON file.
        spec: PathBuf,
        #[command(flatten)]
        io: Io,
    },
    /// Print what the header says (format, size, frames) as JSON, without decoding.
    Probe { input: PathBuf },
}

#[derive(Debug, Args)]
struct Place {
    /// top_left | top | top_right | left | center | right | bottom_left | bottom | bottom_right
    #[arg(long)]
    gravity: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    offset_x: Option<i32>,
    #[arg(long, allow_hyphen_values = true)]
    offset_y: Option<i32>,
}

#[derive(Debug, Args)]
struct Io {
    input: PathBuf,
    output: PathBuf,
    /// jpeg | png | webp | gif (default: from OUTPUT's extension, else the input's format).
    #[arg(long)]
    format: Option<String>,
    /// JPEG / lossy WebP quality 1..=100.
    #[arg(long)]
    quality: Option<u8>,
    #[arg(long)]
    progressive: bool,
    #[arg(long)]
    lossless: bool,
    /// Benchmark: run N more times after a warm-up (0: once, cold) and print
    /// `IMGBENCH op_ms=<median> min_ms=<min>`.
    #[arg(long, hide = true)]
    repeat: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, status) = match err.downcast_ref::<image_ops::Error>() {
                Some(e) if e.category() == Category::Client => (e.code(), 2),
                Some(e) => (e.code(), 1),
                None => ("error", 1),
            };
            eprintln!("imgfn: {code}: {err:#}");
            ExitCode::from(status)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let mut assets = Assets::new();
    let (op, io) = match command {
        Command::Probe { input } => {
            let bytes = read(&input)?;
            let p = image_ops::decode::probe(&bytes, &Limits::default())?;
            let info = json!({"format": p.format, "width": p.width, "height": p.height, "frames": p.frames});
            println!("{info}");
            return Ok(());
        }
        Command::Pipeline { spec, io } => {
            let text =
                std::fs::read_to_string(&spec).with_context(|| format!("reading {}", spec.display()))?;
            let mut pipeline: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", spec.display()))?;
            let base = spec.parent().unwrap_or(Path::new("."));
            load_assets(&pipeline, base, &mut assets)?;
            apply_io_overrides(&mut pipeline, &io);
            return execute(pipeline, &assets, &io);
        }
        Command::Thumbnail { width, height, fit, gravity, upscale, io } => (
            json!({"op": "resize", "width": width, "height": height, "fit": fit, "gravity": gravity,
                   "upscale": upscale}),
            io,
        ),
        Command::WatermarkText { text, font, size, color, opacity, place, tile, io } => {
            let font = font.map(|path| add_asset(&mut assets, &path)).transpose()?;
            let size = size.map(|s| s.parse::<u32>().map(Value::from).unwrap_or(Value::from(s)));
            let mut op = json!({"op": "watermark_text", "text": text, "font": font, "size": size,
                                "color": color, "opacity": opacity, "tile": tile.map(|s| json!({"spacing": s}))});
            place.merge_into(&mut op);
            (op, io)
        }
        Command::WatermarkImage { image, scale, opacity, place, tile, io } => {
            let name = add_asset(&mut assets, &image)?;
            let mut op = json!({"op": "watermark_image", "image": name, "scale": scale, "opacity": opacity,
                                "tile": tile.map(|s| json!({"spacing": s}))});
            place.merge_into(&mut op);
            (op, io)
        }
        Command::RoundCorners { radius, background, io } => {
            let radius = radius.parse::<u32>().map(Value::from).unwrap_or(Value::from(radius));
            (json!({"op": "round_corners", "radius": radius, "background": background}), io)
        }
        Command::Qr { data, size, quiet_zone, ec_level, dark, light, place, io } => {
            let mut op = json!({"op": "qr", "data": data, "size": size, "quiet_zone": quiet_zone,
                                "ec_level": ec_level, "dark": dark, "light": light});
            place.merge_into(&mut op);
            (op, io)
        }
        Command::Convert { io } => {
            let mut pipeline = json!({"ops": []});
            apply_io_overrides(&mut pipeline, &io);
            return execute(pipeline, &assets, &io);
        }
        Command::Slice { rows, cols, tile_width, tile_height, io } => (
            json!({"op": "slice", "rows": rows, "cols": cols, "tile_width": tile_width,
                   "tile_height": tile_height}),
            io,
        ),
    };
    let mut pipeline = json!({"ops": [drop_nulls(op)]});
    apply_io_overrides(&mut pipeline, &io);
    execute(pipeline, &assets, &io)
}

impl Place {
    fn merge_into(self, op: &mut Value) {
        if let Value::Object(map) = op {
            map.insert("gravity".into(), json!(self.gravity));
            map.insert("offset_x".into(), json!(self.offset_x));
            map.insert("offset_y".into(), json!(self.offset_y));
        }
    }
}

/// Options left unset on the command line are omitted, so the library's defaults apply.
fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, drop_nulls(v))).collect(),
        ),
        other => other,
    }
}

/// Command-line output options override (and fill in) the pipeline's `output`.
fn apply_io_overrides(pipeline: &mut Value, io: &Io) {
    let Value::Object(root) = pipeline else { return };
    let output = root.entry("output").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(out) = output else { return };
    let format = io.format.clone().or_else(|| {
        let is_dir_target = io.output.extension().is_none();
        (!is_dir_target).then(|| format_from_extension(&io.output)).flatten().map(str::to_owned)
    });
    if let Some(f) = format {
        out.insert("format".into(), json!(f));
    }
    if let Some(q) = io.quality {
        out.insert("quality".into(), json!(q));
    }
    if io.progressive {
        out.insert("progressive".into(), json!(true));
    }
    if io.lossless {
        out.insert("lossless".into(), json!(true));
    }
}

fn format_from_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "jpeg",
        "png" => "png",
        "webp" => "webp",
        "gif" => "gif",
        _ => return None,
    })
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Registers a file as an asset named by its path.
fn add_asset(assets: &mut Assets, path: &Path) -> anyhow::Result<String> {
    let name = path.display().to_string();
    assets.insert(name.clone(), read(path)?);
    Ok(name)
}

/// Loads every asset a pipeline JSON names (fonts, overlay images) from files relative to `base`.
fn load_assets(pipeline: &Value, base: &Path, assets: &mut Assets) -> anyhow::Result<()> {
    let ops = pipeline.get("ops").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for op in ops {
        for key in ["font", "image"] {
            if let Some(name) = op.get(key).and_then(Value::as_str) {
                let bytes = read(&base.join(name))?;
                assets.insert(name.to_owned(), bytes);
            }
        }
    }
    Ok(())
}

fn execute(spec: Value, assets: &Assets, io: &Io) -> anyhow::Result<()> {
    let pipeline: Pipeline =
        serde_json::from_value(spec).map_err(|e| image_ops::Error::invalid("pipeline", e.to_string()))?;
    let limits = Limits::default();
    let input = read(&io.input)?;
    let (output, timing) = match io.repeat {
        None => (pipeline.run(&input, assets, &limits)?, None),
        Some(repeat) => {
            if repeat > 0 {
                pipeline.run(&input, assets, &limits)?; // warm-up
            }
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..repeat.max(1) {
                let start = Instant::now();
                last = Some(pipeline.run(&input, assets, &limits)?);
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let Some(out) = last else { bail!("no run") };
            (out, Some((times[times.len() / 2], times[0])))
        }
    };
    write_output(&output, &io.output)?;
    if let Some((median, min)) = timing {
        println!("IMGBENCH op_ms={median:.2} min_ms={min:.2}");
    }
    Ok(())
}

fn write_output(output: &Output, path: &Path) -> anyhow::Result<()> {
    match output {
        Output::Image(encoded) => {
            std::fs::write(path, &encoded.bytes).with_context(|| format!("writing {}", path.display()))
        }
        Output::Tiles { manifest, tiles } => {
            std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
            for (info, tile) in manifest.tiles.iter().zip(tiles) {
                let name = format!("r{}-c{}.{}", info.row, info.col, tile.format.extension());
                std::fs::write(path.join(name), &tile.bytes)?;
            }
            let json = serde_json::to_vec_pretty(manifest)?;
            std::fs::write(path.join("manifest.json"), json)?;
            Ok(())
        }
    }
}
