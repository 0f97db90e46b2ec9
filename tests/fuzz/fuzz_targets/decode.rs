//! Arbitrary bytes through the decode guard: `image_ops::fuzzing::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| image_ops::fuzzing::decode(data));
