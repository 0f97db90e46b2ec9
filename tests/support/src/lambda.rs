//! A function's configuration as deployed, and its sample event from `events/`.

use std::collections::HashMap;

use imgfn_lambda::Config;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

use crate::{OUTPUT, SOURCE};

/// The config of the function `name` with `IMGFN_OUTPUT_BUCKET`/`IMGFN_SOURCE_BUCKET` set and `vars` on top.
pub fn config(name: &str, vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("IMGFN_OUTPUT_BUCKET".into(), OUTPUT.into());
    map.insert("IMGFN_SOURCE_BUCKET".into(), SOURCE.into());
    for (k, v) in vars {
        map.insert((*k).into(), (*v).into());
    }
    let op = imgfn_lambda::config::trigger_op(name).unwrap();
    Config::from_lookup(op, |k| map.get(k).cloned()).unwrap()
}

/// The sample event `events/s3-<name>.json` with its bucket and key replaced (the key
/// form-URL-encoded, as S3 sends it).
pub fn event(name: &str, records: &[(&str, &str)]) -> LambdaEvent<Value> {
    let path = crate::tools::root().join(format!("events/s3-{name}.json"));
    let sample: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let template = sample["Records"][0].clone();
    let records: Vec<Value> = records
        .iter()
        .map(|(bucket, key)| {
            let mut r = template.clone();
            r["s3"]["bucket"]["name"] = Value::from(*bucket);
            r["s3"]["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{bucket}"));
            r["s3"]["object"]["key"] = Value::from(imgfn_lambda::event::encode_key(key));
            r
        })
        .collect();
    let mut context = Context::default();
    context.request_id = "test-request".into();
    LambdaEvent::new(serde_json::json!({ "Records": records }), context)
}
