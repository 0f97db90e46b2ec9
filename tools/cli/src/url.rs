//! `imgfn url`: signs rendition and stored-output URLs ([`imgfn_lambda::rendition`]) with the
//! same code the edge and the render function verify them with.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use imgfn_lambda::rendition::{parse_steps, Rendition, StoredUrl};

pub const USAGE: &str = "usage: imgfn url [--base URL] [--expires-in SECONDS] SOURCE_KEY STEP [STEP ...]
       imgfn url [--base URL] [--expires-in SECONDS] --stored OUTPUT_KEY

  STEP is an operation and its params as the URL writes them, e.g. thumbnail,width=800 or
  output,format=auto (values may be plain text unless they hold % , ; or =: write those %25 %2C
  %3B %3D). The URL is printed in normal form, signed with the first key of IMGFN_URL_KEYS
  (newest,previous), or --key. --base defaults to the local edge, http://127.0.0.1:8016.";

/// Runs `imgfn url` with `args` (after `url`); prints the URL.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut base = "http://127.0.0.1:8016".to_owned();
    let mut key: Option<String> = None;
    let mut expires_in: Option<u64> = None;
    let mut stored = false;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value =
            |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--base" => base = value("--base")?.trim_end_matches('/').to_owned(),
            "--key" => key = Some(value("--key")?),
            "--expires-in" => {
                expires_in = Some(value("--expires-in")?.parse().context("--expires-in takes seconds")?)
            }
            "--stored" => stored = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{USAGE}"),
            _ => positional.push(arg.clone()),
        }
    }
    let key = match key {
        Some(key) => key,
        None => std::env::var("IMGFN_URL_KEYS")
            .ok()
            .and_then(|list| list.split(',').map(str::trim).find(|k| !k.is_empty()).map(str::to_owned))
            .context("no signing key: set IMGFN_URL_KEYS (newest,previous) or give --key")?,
    };
    let keys = imgfn_lambda::url_keys::parse(&key, "--key").map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let expires = expires_in.map(|s| now + s);
    let path = if stored {
        let [output_key] = positional.as_slice() else { bail!("--stored takes one OUTPUT_KEY\n{USAGE}") };
        StoredUrl { key: output_key.clone(), expires }.signed_path(&keys[0])
    } else {
        let Some((source, steps)) = positional.split_first() else { bail!("{USAGE}") };
        if steps.is_empty() {
            bail!("no STEP: give at least one, e.g. thumbnail,width=800\n{USAGE}");
        }
        let steps = parse_steps(&steps.join(";"))
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.field().unwrap_or("steps")))?;
        imgfn_lambda::keys::check(source).map_err(|why| anyhow::anyhow!("SOURCE_KEY: {why}"))?;
        Rendition { key: source.clone(), steps, expires }.signed_path(&keys[0])
    };
    println!("{base}{path}");
    Ok(())
}
