//! docs/openapi.yaml describes the request bodies the API accepts: its `Output` schema (which
//! allows no other property) names every output param `image_ops::OutputParams` reads, so that
//! a client generated from it can send each of them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use image_ops::{OutputFormat, OutputParams};

#[test]
fn the_output_schema_names_every_output_param() {
    let root = xtask::root();
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap()).unwrap();
    let output = &doc["components"]["schemas"]["Output"];
    assert_eq!(output["additionalProperties"], serde_yaml::Value::Bool(false));
    let schema: BTreeSet<String> =
        output["properties"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    // Every field set, so that none is skipped when serialised.
    let params = OutputParams {
        format: Some(OutputFormat::Jpeg),
        alpha_format: Some(OutputFormat::Png),
        ..OutputParams::default()
    };
    let params: BTreeSet<String> =
        serde_json::to_value(&params).unwrap().as_object().unwrap().keys().cloned().collect();
    assert_eq!(schema, params, "docs/openapi.yaml's Output schema against OutputParams");
}
