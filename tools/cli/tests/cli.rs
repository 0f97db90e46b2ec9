//! End-to-end tests of the `imgfn` binary on the sample files shipped in the repository.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample(name: &str) -> PathBuf {
    root().join("samples").join(name)
}

fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn imgfn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgfn")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = imgfn(args);
    assert!(out.status.success(), "imgfn {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn thumbnail_fits_the_box() {
    let dir = out_dir("thumbnail");
    let out = dir.join("t.jpg");
    ok(&["thumbnail", "--width", "256", "--height", "256", s(&sample("photo.jpg")), s(&out)]);
    let img = image::open(&out).unwrap();
    // 1224x816 inside 256x256 -> 256x171.
    assert_eq!((img.width(), img.height()), (256, 171));
    assert_eq!(image::ImageFormat::from_path(&out).unwrap(), image::ImageFormat::Jpeg);
}

#[test]
fn sample_pipeline_runs_and_qr_is_readable() {
    let dir = out_dir("pipeline");
    let out = dir.join("p.webp");
    ok(&["pipeline", s(&sample("pipeline.json")), s(&sample("photo.jpg")), s(&out)]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[8..12], b"WEBP");
    let img = image::load_from_memory(&bytes).unwrap().into_rgba8();
    assert_eq!(img.dimensions(), (800, 533));
    // Round corners: the corner is transparent, the centre opaque.
    assert_eq!(img.get_pixel(0, 0)[3], 0);
    assert_eq!(img.get_pixel(400, 266)[3], 255);
    // The QR code sits bottom-left and decodes back to its payload.
    let luma = image::DynamicImage::ImageRgba8(img).to_luma8();
    let crop = image::imageops::crop_imm(&luma, 0, 533 - 200, 200, 200).to_image();
    let mut prepared = rqrr::PreparedImage::prepare(crop);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    assert_eq!(grids[0].decode().unwrap().1, "https://example.com/p/42");
}

#[test]
fn every_subcommand_produces_its_output() {
    let dir = out_dir("subcommands");
    let photo = sample("photo.jpg");
    let logo = sample("logo.png");
    let cases: Vec<(Vec<&str>, &str, (u32, u32))> = vec![
        (vec!["watermark", "--text", "hello\nworld", "--size", "48", "--tile", "120"], "wt.png", (1224, 816)),
        (vec!["watermark", "--image", s(&logo), "--scale", "0.3"], "wi.jpg", (1224, 816)),
        (vec!["round-corner", "--radius", "10%"], "rc.png", (1224, 816)),
        (
            vec!["qr-overlay", "--data", "hi", "--size", "300", "--gravity", "center", "--offset-x", "-10"],
            "qr.gif",
            (1224, 816),
        ),
        (vec!["convert", "--quality", "70"], "c.webp", (1224, 816)),
        (vec!["watermark", "--text", "x", "--quality", "source"], "ws.jpg", (1224, 816)),
        (
            vec!["thumbnail", "--width", "100", "--upscale", "--fit", "cover", "--height", "50"],
            "t.png",
            (100, 50),
        ),
        // Earlier spellings still work.
        (vec!["resize", "--width", "100"], "r.jpg", (100, 67)),
        (vec!["watermark-text", "--text", "x"], "wt2.jpg", (1224, 816)),
        (vec!["watermark-image", "--image", s(&logo)], "wi2.jpg", (1224, 816)),
        (vec!["round-corners", "--radius", "8"], "rc2.png", (1224, 816)),
        (vec!["qr", "--data", "hi"], "qr2.jpg", (1224, 816)),
    ];
    for (args, name, dims) in cases {
        let out = dir.join(name);
        let mut full = args.clone();
        full.push(s(&photo));
        full.push(s(&out));
        ok(&full);
        let img = image::open(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((img.width(), img.height()), dims, "{name}");
    }
}

/// `--keep-icc` (and `--keep-copyright`) are output params like `--quality`: the phone's Display
/// P3 profile is in the JPEG with the first, and no profile without it.
#[test]
fn keep_icc_and_keep_copyright_are_output_flags() {
    let dir = out_dir("keep");
    let heic = root().join("shared/image-ops/tests/fixtures/heic/iphone_style.heic");
    let (kept, plain) = (dir.join("kept.jpg"), dir.join("plain.jpg"));
    ok(&["thumbnail", "--width", "64", "--keep-icc", "--keep-copyright", s(&heic), s(&kept)]);
    ok(&["thumbnail", "--width", "64", s(&heic), s(&plain)]);
    let icc = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let mut d = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        image::ImageDecoder::icc_profile(&mut d).unwrap()
    };
    assert!(icc(&kept).is_some_and(|p| p.len() > 128), "the phone's profile");
    assert_eq!(icc(&plain), None);
}

/// A phone's HEIC and an AVIF (written by libheif's and libavif's encoders) through every
/// subcommand, to every format the output's extension names.
#[test]
fn heic_and_avif_inputs_through_every_subcommand() {
    let dir = out_dir("heif-inputs");
    let fixtures = root().join("shared/image-ops/tests/fixtures");
    for (input, (w, h)) in [("heic/texture_8.heic", (256u32, 192u32)), ("avif/grid_2x2.avif", (128, 128))] {
        let input = fixtures.join(input);
        let probe = ok(&["probe", s(&input)]);
        let printed = String::from_utf8_lossy(&probe.stdout).into_owned();
        assert!(printed.contains(&w.to_string()) && printed.contains(&h.to_string()), "{printed}");
        let cases: Vec<(Vec<&str>, &str, (u32, u32))> = vec![
            (vec!["thumbnail", "--width", "64"], "t.webp", (64, 64 * h / w)),
            (vec!["watermark", "--text", "x"], "w.jpg", (w, h)),
            (vec!["round-corner", "--radius", "10%"], "rc.png", (w, h)),
            (vec!["qr-overlay", "--data", "hi", "--size", "90"], "qr.gif", (w, h)),
            (vec!["convert"], "c.avif", (w, h)),
            (vec!["convert", "--quality", "70"], "c.jpg", (w, h)),
        ];
        for (args, name, dims) in cases {
            let out = dir.join(format!("{}-{name}", input.extension().unwrap().to_str().unwrap()));
            let mut full = args.clone();
            full.push(s(&input));
            full.push(s(&out));
            ok(&full);
            if name.ends_with(".avif") {
                assert_eq!(std::fs::read(&out).unwrap().get(4..12), Some(&b"ftypavif"[..]), "{name}");
                continue;
            }
            let img = image::open(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((img.width(), img.height()), dims, "{} {name}", input.display());
        }
        let tiles = dir.join(format!("{}-tiles", input.extension().unwrap().to_str().unwrap()));
        ok(&["slice", "--rows", "2", "--cols", "2", s(&input), s(&tiles)]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tiles.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            (manifest["width"].as_u64(), manifest["height"].as_u64()),
            (Some(u64::from(w)), Some(u64::from(h)))
        );
        assert_eq!(manifest["tiles"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn slice_writes_tiles_and_manifest() {
    let dir = out_dir("slice");
    let tiles = dir.join("tiles");
    ok(&["slice", "--rows", "2", "--cols", "3", "--format", "png", s(&sample("photo.jpg")), s(&tiles)]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tiles.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 2);
    assert_eq!(manifest["cols"], 3);
    assert_eq!(manifest["tiles"].as_array().unwrap().len(), 6);
    // 1224 / 3 = 408; 816 / 2 = 408.
    let last = image::open(tiles.join("r1-c2.png")).unwrap();
    assert_eq!((last.width(), last.height()), (408, 408));
}

#[test]
fn errors_print_their_code_and_exit_2() {
    let dir = out_dir("errors");
    let bad = dir.join("bad.jpg");
    std::fs::write(&bad, b"\xFF\xD8\xFF\xE0 truncated").unwrap();
    let out = imgfn(&["thumbnail", "--width", "10", s(&bad), s(&dir.join("o.jpg"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt_image"));

    let svg = dir.join("x.svg");
    std::fs::write(&svg, b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    let out = imgfn(&["convert", s(&svg), s(&dir.join("o.png"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported_format"));

    let out = imgfn(&["thumbnail", "--width", "0", s(&sample("photo.jpg")), s(&dir.join("o.jpg"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid_params") && err.contains("ops[0].width"), "{err}");
    assert!(!dir.join("o.jpg").exists(), "no output on failure");
}

#[test]
fn bench_repeat_prints_timing_line() {
    let dir = out_dir("repeat");
    let out =
        ok(&["thumbnail", "--width", "64", "--repeat", "2", s(&sample("photo.jpg")), s(&dir.join("t.jpg"))]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("IMGBENCH op_ms="), "{stdout}");
}

#[test]
fn help_lists_every_operation_of_the_registry() {
    let out = ok(&["help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for spec in image_ops::REGISTRY {
        assert!(text.contains(spec.name), "{} missing from:\n{text}", spec.name);
        let one = ok(&["help", spec.name]);
        assert!(String::from_utf8_lossy(&one.stdout).contains(spec.params), "{}", spec.name);
    }
    let out = imgfn(&["no-such-op", "in.jpg", "out.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command"));
}
