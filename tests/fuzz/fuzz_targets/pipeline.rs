//! A pipeline spec and an image through `Pipeline::new` and `run`: `image_ops::fuzzing::pipeline`.
#![no_main]

use image_ops::fuzzing::Json;

const JSON: Json =
    Json { parse: |bytes| serde_json::from_slice(bytes).ok(), print: |spec| serde_json::to_vec(spec).ok() };

libfuzzer_sys::fuzz_target!(|data: &[u8]| image_ops::fuzzing::pipeline(data, JSON));
