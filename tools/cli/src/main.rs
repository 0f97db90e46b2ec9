//! `imgfn`: run any imgfn operation, or a pipeline JSON, on local files.
//!
//! ```text
//! imgfn thumbnail --width 256 --height 256 in.jpg out.jpg
//! imgfn pipeline ops.json in.jpg out.webp
//! imgfn url originals/beach.jpg thumbnail,width=800 output,format=auto
//! ```
//!
//! The subcommands are the operation registry (`image_ops::ops::REGISTRY`): one per operation,
//! by its name or any alias, each taking the operation's params as `--name value` (`--offset-x`
//! is `offset_x`) and the output params (`--format`, `--quality`, ...) the same way. Values are
//! read as JSON when they parse as JSON (`256`, `true`, `{"spacing": 64}`), else as text; a flag
//! without a value is `true`. Every subcommand builds the same pipeline the HTTP API accepts, so
//! the CLI runs exactly the code the Lambda functions run. On failure the error code (e.g.
//! `corrupt_image`) is printed and the exit status is 2 for bad input or parameters, 1 for
//! anything else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use image_ops::ops::{self, slice::tile_name, Kind, OpSpec};
use image_ops::{Assets, Category, Limits, Output, OutputFormat, OutputParams, Pipeline, PipelineSpec};
use serde_json::{json, Map, Value};

mod url;

const USAGE: &str = "usage: imgfn <operation> [--param value ...] INPUT OUTPUT
       imgfn pipeline SPEC.json INPUT OUTPUT
       imgfn probe INPUT
       imgfn url [--base URL] [--expires-in SECONDS] SOURCE_KEY STEP [STEP ...]
       imgfn help [operation]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
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

fn run(args: &[String]) -> anyhow::Result<()> {
    let Some((command, rest)) = args.split_first() else {
        println!("{}", help(None));
        return Ok(());
    };
    match command.as_str() {
        "help" | "--help" | "-h" => {
            println!("{}", help(rest.first().map(String::as_str)));
            Ok(())
        }
        "--version" | "-V" => {
            println!("imgfn {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "url" => url::run(rest),
        "probe" => {
            let [input] = rest else { bail!("{USAGE}") };
            let bytes = read(Path::new(input))?;
            let p = image_ops::decode::probe(&bytes, &Limits::default())?;
            println!(
                "{}",
                json!({"format": p.format, "width": p.width, "height": p.height, "frames": p.frames})
            );
            Ok(())
        }
        "pipeline" => {
            let (options, io) = Options::parse(rest, 3)?;
            let spec_path = PathBuf::from(&io[0]);
            let text = std::fs::read_to_string(&spec_path)
                .with_context(|| format!("reading {}", spec_path.display()))?;
            let mut spec: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", spec_path.display()))?;
            options.apply_output(&mut spec, Path::new(&io[2]))?;
            let base = spec_path.parent().unwrap_or(Path::new("."));
            execute(spec, base, Path::new(&io[1]), Path::new(&io[2]), options.repeat)
        }
        name => {
            let op = ops::find(name).ok_or_else(|| anyhow::anyhow!("unknown command {name:?}\n{USAGE}"))?;
            if rest.iter().any(|a| a == "--help" || a == "-h") {
                println!("{}", help(Some(name)));
                return Ok(());
            }
            let (options, io) = Options::parse(rest, 2)?;
            let mut spec = options.spec(op)?;
            options.apply_output(&mut spec, Path::new(&io[1]))?;
            execute(spec, Path::new("."), Path::new(&io[0]), Path::new(&io[1]), options.repeat)
        }
    }
}

/// The `--name value` options of a command line, and its positional arguments.
#[derive(Debug, Default)]
struct Options {
    /// Params by name (`offset_x`), in order.
    params: Vec<(String, Value)>,
    /// `--repeat N` (hidden, for the benchmarks): run N more times after a warm-up and print
    /// `IMGBENCH op_ms=<median> min_ms=<min>`.
    repeat: Option<u32>,
}

impl Options {
    /// Options first, then exactly `positional` arguments (the files).
    fn parse(args: &[String], positional: usize) -> anyhow::Result<(Options, Vec<String>)> {
        if args.len() < positional || args[args.len() - positional..].iter().any(|a| a.starts_with("--")) {
            bail!("expected {positional} file arguments after the options\n{USAGE}");
        }
        let (flags, files) = args.split_at(args.len() - positional);
        let mut options = Options::default();
        let mut i = 0;
        while i < flags.len() {
            let Some(flag) = flags[i].strip_prefix("--") else {
                bail!("unexpected argument {:?}: options are --name value\n{USAGE}", flags[i]);
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, value.to_owned()),
                None if flags.get(i + 1).is_some_and(|v| !v.starts_with("--")) => {
                    i += 1;
                    (flag, flags[i].clone())
                }
                None => (flag, "true".to_owned()),
            };
            i += 1;
            let name = name.replace('-', "_");
            if name == "repeat" {
                options.repeat = Some(value.parse().context("--repeat takes a number")?);
                continue;
            }
            let value = serde_json::from_str::<Value>(&value).unwrap_or(Value::String(value));
            options.params.push((name, value));
        }
        Ok((options, files.to_vec()))
    }

    /// The names of the output params (`format`, `quality`, ...).
    fn output_names() -> Vec<String> {
        match serde_json::to_value(OutputParams::default()) {
            Ok(Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }

    /// A one-operation pipeline: the operation's params and the output params.
    fn spec(&self, op: &OpSpec) -> anyhow::Result<Value> {
        let outputs = Options::output_names();
        let mut step = Map::new();
        let mut output = Map::new();
        for (name, value) in &self.params {
            let goes_to_output = op.kind == Kind::Output || outputs.contains(name);
            let map = if goes_to_output { &mut output } else { &mut step };
            map.insert(name.clone(), value.clone());
        }
        let ops = match op.kind {
            Kind::Output => Vec::new(),
            Kind::Pixels => {
                step.insert("op".into(), Value::from(op.name));
                vec![Value::Object(step)]
            }
        };
        Ok(json!({"ops": ops, "output": output}))
    }

    /// For `pipeline`: output params given on the command line override the file's. For every
    /// command: without a format, the OUTPUT file's extension chooses it.
    fn apply_output(&self, spec: &mut Value, output: &Path) -> anyhow::Result<()> {
        let Value::Object(root) = spec else { bail!("a pipeline is a JSON object") };
        let out = root.entry("output").or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(out) = out else { bail!("output must be a JSON object") };
        let outputs = Options::output_names();
        for (name, value) in &self.params {
            if outputs.contains(name) {
                out.insert(name.clone(), value.clone());
            }
        }
        if !out.contains_key("format") {
            let ext = output.extension().and_then(|e| e.to_str());
            if let Some(format) = ext.and_then(OutputFormat::from_extension) {
                out.insert("format".into(), Value::from(format.name()));
            }
        }
        Ok(())
    }
}

/// The general help, or one operation's.
fn help(op: Option<&str>) -> String {
    if let Some(spec) = op.and_then(ops::find) {
        let aliases = if spec.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", spec.aliases.join(", "))
        };
        return format!(
            "imgfn {name}{aliases}: {summary}\n\nusage: imgfn {name} [--param value ...] INPUT OUTPUT\n\n\
             params: {params}\n\noutput params: --format {formats} (default: OUTPUT's extension, \
             else the input's), --quality 1-100|source, --progressive, --lossless, --compression-level 0-9, \
             --effort 0-6, --depth 8|10 (AVIF), --chroma-subsampling auto|4:2:0|4:4:4 (AVIF), --background '#rrggbb', --keep-icc, --keep-copyright",
            formats = OutputFormat::ALL.map(OutputFormat::name).join("|"),
            name = spec.name,
            summary = spec.summary,
            params = spec.params,
        );
    }
    let mut out = format!("imgfn: imgfn's image operations on local files\n\n{USAGE}\n\noperations:\n");
    for spec in ops::REGISTRY {
        out.push_str(&format!("  {:<14} {}\n", spec.name, spec.summary));
    }
    out.push_str("\n`imgfn help <operation>` lists its params.");
    out
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Validates the pipeline, loads the assets it names (files, relative to `base`), runs it on
/// `input` and writes `output`.
fn execute(spec: Value, base: &Path, input: &Path, output: &Path, repeat: Option<u32>) -> anyhow::Result<()> {
    let spec: PipelineSpec =
        serde_json::from_value(spec).map_err(|e| image_ops::Error::invalid("pipeline", e.to_string()))?;
    let pipeline = Pipeline::new(spec, Limits::default())?;
    let mut assets = Assets::new();
    for asset in pipeline.assets() {
        assets.insert(asset.name.to_owned(), read(&base.join(asset.name))?);
    }
    let input = read(input)?;
    let (rendered, timing) = match repeat {
        None => (pipeline.run(&input, &assets)?, None),
        Some(repeat) => {
            if repeat > 0 {
                pipeline.run(&input, &assets)?; // warm-up
            }
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..repeat.max(1) {
                let start = Instant::now();
                last = Some(pipeline.run(&input, &assets)?);
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let Some(out) = last else { bail!("no run") };
            (out, Some((times[times.len() / 2], times[0])))
        }
    };
    write_output(&rendered.output, output)?;
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
                std::fs::write(
                    path.join(tile_name(info.row, info.col, tile.format.extension())),
                    &tile.bytes,
                )?;
            }
            let json = serde_json::to_vec_pretty(manifest)?;
            std::fs::write(path.join("manifest.json"), json)?;
            Ok(())
        }
    }
}
