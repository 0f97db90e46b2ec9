//! The S3-triggered functions as `template.yaml` configures them, derived from the operation
//! registry: one per operation with a trigger, listening on `<name>/`, with the registry's
//! default params (`tests/stack-check` checks that the template says the same).

use image_ops::ops::OpSpec;

/// The variables `template.yaml` gives the function of `op` besides the buckets, with the
/// template's parameter defaults: the registry's.
pub fn function_vars(op: &OpSpec) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("IMGFN_TRIGGER_PREFIX", op.trigger_prefix().unwrap_or_default()),
        ("IMGFN_ERROR_PREFIX", "errors/".to_owned()),
        ("IMGFN_ASSET_PREFIX", "assets/".to_owned()),
    ];
    if let Some(t) = op.trigger {
        vars.push(("IMGFN_PARAMS", t.params.to_owned()));
        if !t.output.is_empty() {
            vars.push(("IMGFN_OUTPUT", t.output.to_owned()));
        }
    }
    vars
}
