//! The README's run command and its "Try it locally" examples, end to end: the real
//! `imgfn-local` binary is started on free ports of 127.0.0.1, the README's shell block (between
//! the `local-demo` markers) is run as written against it with the AWS CLI, curl and jq, and
//! every file it produced is checked against a reference. Then more of what S3 does (a
//! multipart upload, a server-side copy, an upload where nothing listens), and Ctrl-C.
//!
//! It needs the AWS CLI, curl and jq, so it is ignored unless asked for (`cargo test --
//! --ignored`, as `.ci/run` does after installing them); asked for without them, it fails.
//! Finding the AWS CLI: `IMGFN_AWS_CLI`, else `$CARGO_TARGET_DIR/py-tools/bin/aws` (installed by
//! `scripts/ci-python-tools.sh`), else `PATH`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use image::RgbImage;
use imgfn_test_support::tools::{on_path, python_tool, require, root};

/// The shell block of the README between `<!-- local-demo` and `<!-- /local-demo -->`.
fn readme_demo() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("<!-- local-demo").expect("README.md has no <!-- local-demo --> block");
    let end =
        readme[start..].find("<!-- /local-demo -->").expect("README.md: unclosed local-demo block") + start;
    let block = &readme[start..end];
    let code = block.split("```sh\n").nth(1).expect("the local-demo block has a ```sh fence");
    code.split("\n```").next().unwrap().to_owned()
}

/// The running binary; killed if the test fails before stopping it.
struct Stack {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    s3: String,
    api: String,
    edge: String,
    data: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stack {
    fn start(work: &Path) -> Stack {
        let data = work.join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgfn-local"))
            .args([
                "--s3-addr",
                "127.0.0.1:0",
                "--api-addr",
                "127.0.0.1:0",
                "--edge-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stack = Stack {
            child,
            lines,
            seen: Vec::new(),
            s3: String::new(),
            api: String::new(),
            edge: String::new(),
            data,
        };
        stack.wait_for_line("ready", Duration::from_secs(60));
        let url_after = |label: &str| {
            let line = stack.seen.iter().find(|l| l.starts_with(label)).unwrap();
            line[label.len()..].split_whitespace().next().unwrap().to_owned()
        };
        stack.s3 = url_after("S3 endpoint:");
        stack.api = url_after("HTTP API:");
        stack.edge = url_after("CDN:");
        for url in [&stack.s3, &stack.api, &stack.edge] {
            assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        }
        stack
    }

    /// Reads output until a line equal to (or containing) `needle`; panics with everything
    /// seen after `timeout`.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no {needle:?} line within {timeout:?}; output:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Runs `script` with bash in `dir`, with the AWS CLI's and `imgfn`'s directories first on
    /// PATH.
    fn sh(&self, aws: &Path, dir: &Path, script: &str) -> String {
        let path = std::env::join_paths(
            [aws.parent().unwrap().to_path_buf(), imgfn_cli_dir()]
                .into_iter()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let script = script
            .replace("http://127.0.0.1:8014", &self.s3)
            .replace("http://127.0.0.1:8015", &self.api)
            .replace("http://127.0.0.1:8016", &self.edge);
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir)
            .env("PATH", path)
            // Only the script's own settings: no profile or config of the person running the tests.
            .env("AWS_CONFIG_FILE", dir.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "script failed ({}):\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- imgfn-local\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.seen.join("\n")
        );
        stdout
    }

    /// The object's file in the endpoint's data directory (s3s-fs stores plain files).
    fn object(&self, bucket: &str, key: &str) -> PathBuf {
        self.data.join(bucket).join(key)
    }

    fn wait_for_object(&mut self, bucket: &str, key: &str) -> PathBuf {
        let path = self.object(bucket, key);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.is_file() {
            assert!(Instant::now() < deadline, "{bucket}/{key} never appeared:\n{}", self.seen.join("\n"));
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        path
    }
}

/// The folder of the `imgfn` command line (built here, as the README says, if it is not yet).
fn imgfn_cli_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built =
        Command::new(cargo).args(["build", "-q", "-p", "imgfn-cli"]).current_dir(root()).status().unwrap();
    assert!(built.success(), "cargo build -p imgfn-cli failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let dir = target.join("debug");
    assert!(dir.join("imgfn").is_file(), "no imgfn in {}", dir.display());
    dir
}

/// `samples/photo.jpg` decoded by the image crate (not imgfn's libjpeg-turbo path), resized to
/// `width` x `height` with its own Lanczos3.
fn reference(width: u32, height: u32) -> RgbImage {
    let photo = image::open(root().join("samples/photo.jpg")).unwrap().to_rgb8();
    image::imageops::resize(&photo, width, height, image::imageops::FilterType::Lanczos3)
}

/// Mean absolute difference per channel, 0-255.
fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    total as f64 / a.as_raw().len() as f64
}

/// Decodes `path` with the image crate and compares it with the reference at its size.
fn assert_like_photo(path: &Path, size: (u32, u32), tolerance: f64) {
    let bytes = std::fs::read(path).unwrap();
    let img = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let reference = reference(size.0, size.1);
    let diff = mean_abs_diff(&img, &reference);
    assert!(diff < tolerance, "{}: mean abs diff {diff:.2} >= {tolerance}", path.display());
    // The tolerance tells a right image from a mirrored (or sideways-cropped) one.
    let mirrored = mean_abs_diff(&img, &image::imageops::flip_horizontal(&reference));
    assert!(
        mirrored > 2.0 * tolerance,
        "{}: the check cannot tell a mirrored image ({mirrored:.2})",
        path.display()
    );
}

/// The AWS CLI, after checking that curl and jq are there too.
fn tools() -> PathBuf {
    let how = "bash scripts/ci-python-tools.sh installs the AWS CLI; apt-get install curl jq";
    require(on_path("curl"), "curl", how);
    require(on_path("jq"), "jq", how);
    require(python_tool("IMGFN_AWS_CLI", "aws"), "the AWS CLI", how)
}

#[test]
#[ignore = "needs the AWS CLI, curl and jq: bash scripts/ci-python-tools.sh, then cargo test -- --ignored"]
fn readme_examples_work_against_the_local_stack() {
    let aws = tools();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("local-stack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let demo = work.join("demo");
    std::fs::create_dir_all(demo.join("samples")).unwrap();
    std::fs::copy(root().join("samples/photo.jpg"), demo.join("samples/photo.jpg")).unwrap();
    std::fs::copy(root().join("samples/logo.png"), demo.join("samples/logo.png")).unwrap();
    let mut stack = Stack::start(&work);

    // The README's block, as written (only the ports differ). It works in a scratch folder it
    // names on its last line, and leaves nothing where it was started.
    let stdout = stack.sh(&aws, &demo, &readme_demo());
    let files = PathBuf::from(
        stdout
            .rsplit_once("the files are in ")
            .map(|(_, dir)| dir.trim())
            .unwrap_or_else(|| panic!("the last line names the folder:\n{stdout}")),
    );
    let left: Vec<_> = std::fs::read_dir(&demo).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["samples"], "the block leaves nothing where it was started");

    // S3 trigger: the thumbnail function's output, fetched by the script.
    assert_like_photo(&files.join("photo.webp"), (256, 171), 9.0);
    // Per-object params: 64 px.
    let small = image::open(files.join("small.webp")).unwrap();
    assert_eq!((small.width(), small.height()), (64, 43));
    // The bad upload: an error record naming the problem, and no image.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(stack.object("imgfn-output", "errors/thumbnail/bad.jpg.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["code"], "unsupported_format", "{record}");
    assert_eq!(record["source"]["key"], "thumbnail/bad.jpg", "{record}");
    assert!(stdout.contains("unsupported_format"), "the script prints the error record:\n{stdout}");
    let thumbnails: Vec<_> = std::fs::read_dir(stack.object("imgfn-output", "thumbnail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut thumbnails = thumbnails;
    thumbnails.sort();
    assert_eq!(thumbnails, ["photo.webp", "small.webp"]);
    // HTTP API: the processed image downloaded through its presigned URL (the watermark is a
    // small corner; the rest must match).
    assert_like_photo(&files.join("out.webp"), (800, 533), 9.0);
    let processed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(files.join("processed.json")).unwrap()).unwrap();
    assert_eq!((processed["width"].as_u64(), processed["cached"].as_bool()), (Some(800), Some(false)));

    // CDN: the stable URLs serve the very objects stored.
    let read = |name: &str| std::fs::read(files.join(name)).unwrap();
    assert_eq!(read("out-cdn.webp"), read("out.webp"), "/process's cdn_url serves its output");
    assert_eq!(read("photo-cdn.webp"), read("photo.webp"), "a trigger output's signed URL serves it");
    // A rendition: rendered once (miss), then served stored (hit); auto → AVIF for a browser
    // that takes it, WebP for one that takes WebP only, JPEG for one that takes neither; 304 on
    // revalidation.
    let page = String::from_utf8(read("page.html")).unwrap();
    assert!(
        page.starts_with(&format!(
            "<img src=\"{}/v1/originals/beach.jpg/thumbnail,width=640;output,format=auto/",
            stack.edge
        )),
        "{page}"
    );
    let first = String::from_utf8(read("first.txt")).unwrap().to_ascii_lowercase();
    let again = String::from_utf8(read("again.txt")).unwrap().to_ascii_lowercase();
    assert!(
        first.contains("x-imgfn-cache: miss") && again.contains("x-imgfn-cache: hit"),
        "{first}\n{again}"
    );
    assert!(first.contains("content-type: image/avif"), "{first}");
    assert!(first.contains("cache-control: public, max-age=3600, s-maxage=31536000"), "{first}");
    assert_eq!(read("beach.avif").get(4..12), Some(&b"ftypavif"[..]), "an AVIF file");
    assert_like_photo(&files.join("beach.webp"), (640, 427), 9.0);
    assert_eq!(image::guess_format(&read("beach.jpg")).unwrap(), image::ImageFormat::Jpeg);
    assert_like_photo(&files.join("beach.jpg"), (640, 427), 9.0);
    assert_eq!(String::from_utf8(read("revalidated.txt")).unwrap().trim(), "304");
    // After the overwrite, the same URL gives the new image (the logo, alpha and all).
    let new = image::load_from_memory(&read("new.webp")).unwrap();
    let logo = image::open(root().join("samples/logo.png")).unwrap();
    assert_eq!(new.width(), 640.min(logo.width()), "the new source, not the old one");
    assert_eq!(new.height(), logo.height() * new.width() / logo.width());
    assert!(new.color().has_alpha(), "the logo's alpha survives");

    // What else creates objects in S3: a multipart upload, and a server-side copy. And an
    // upload where no function listens, which is stored and nothing else.
    std::fs::write(
        demo.join("aws-config"),
        "[default]\ns3 =\n  multipart_threshold = 64KB\n  multipart_chunksize = 64KB\n",
    )
    .unwrap();
    let more = "export AWS_ACCESS_KEY_ID=imgfn-local AWS_SECRET_ACCESS_KEY=imgfn-local-secret AWS_DEFAULT_REGION=us-east-1\n\
                S3=http://127.0.0.1:8014\n\
                aws s3 cp samples/photo.jpg s3://imgfn-source/round-corner/multipart.jpg --endpoint-url $S3\n\
                aws s3 cp s3://imgfn-source/thumbnail/photo.jpg s3://imgfn-source/convert/copied.jpg --endpoint-url $S3\n\
                aws s3 cp samples/photo.jpg s3://imgfn-source/elsewhere/photo.jpg --endpoint-url $S3\n";
    stack.sh(&aws, &demo, more);
    let rounded = stack.wait_for_object("imgfn-output", "round-corner/multipart.png");
    let converted = stack.wait_for_object("imgfn-output", "convert/copied.webp");
    stack.wait_for_line("ObjectCreated:CompleteMultipartUpload", Duration::from_secs(30));
    let corner = image::open(&rounded).unwrap().to_rgba8();
    assert_eq!(corner.dimensions(), (1224, 816));
    assert_eq!(corner.get_pixel(0, 0)[3], 0, "round-corner leaves the corner transparent");
    assert_eq!(corner.get_pixel(612, 408)[3], 255);
    assert_like_photo(&converted, (1224, 816), 4.0);
    stack.wait_for_line("no function listens", Duration::from_secs(30));
    assert!(!stack.object("imgfn-output", "elsewhere").exists());
    let outputs = std::fs::read_dir(stack.object("imgfn-output", "")).unwrap().count();
    assert_eq!(outputs, 6, "thumbnail/, errors/, processed/, r/, round-corner/, convert/ and nothing else");

    // Keys with `+` and spaces survive a recursive copy: the CLI lists with encoding-type=url
    // and decodes what the endpoint encoded, as with S3.
    let odd = "export AWS_ACCESS_KEY_ID=imgfn-local AWS_SECRET_ACCESS_KEY=imgfn-local-secret AWS_DEFAULT_REGION=us-east-1\n\
               S3=http://127.0.0.1:8014\n\
               aws s3 cp samples/photo.jpg 's3://imgfn-source/thumbnail/odd/a+b c.jpg' --endpoint-url $S3\n\
               aws s3api wait object-exists --bucket imgfn-output --key 'thumbnail/odd/a+b c.webp' --endpoint-url $S3\n\
               aws s3 cp --recursive s3://imgfn-output/thumbnail/odd/ copied --endpoint-url $S3\n";
    stack.sh(&aws, &demo, odd);
    assert!(
        demo.join("copied/a+b c.webp").is_file(),
        "{:?}",
        std::fs::read_dir(demo.join("copied")).map(|d| d.count())
    );

    // Ctrl-C stops it cleanly.
    let pid = stack.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    stack.wait_for_line("stopped", Duration::from_secs(40));
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "exit status after Ctrl-C: {status}");
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&files);
}
