//! Keeps `template.yaml` in step with the workspace (and with `samconfig.toml` and `events/`);
//! `tests/registry.rs` checks that what derives from the operation registry is up to date. Here:
//! every function crate has exactly one resource building its binary and every resource's
//! binary is a crate; every function crate is a registry function or an API route; every
//! trigger prefix routes to its operation's function, which listens on that prefix; no policy allows a wildcard action or a bucket-wide write; each S3 function may
//! read only its prefix (and the assets) and write only its outputs and error records; the
//! output bucket triggers nothing; the functions' default configuration is accepted by the
//! plumbing exactly as deployed, and `imgfn-local` runs that same configuration; samconfig.toml
//! overrides every parameter with its default.
//!
//! The template is read with serde_yaml, which keeps CloudFormation's short-form tags (`!Sub`,
//! `!Ref`, `!GetAtt`, `!If`, ...) as tagged values; [`intrinsic`] reads both forms.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use image_ops::ops::{self, OpSpec};
use imgfn_lambda::Config;
use serde_yaml::Value;

/// Pseudo parameters, for resolving names the way CloudFormation would in one stack.
const STACK: &str = "imgfn";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Template {
    doc: Value,
    /// Parameters given a value other than their default (as `--parameter-overrides` would).
    given: BTreeMap<String, String>,
}

/// A function resource of the template.
struct Function<'t> {
    id: &'t str,
    binary: String,
    props: &'t Value,
}

fn load() -> Template {
    let text = fs::read_to_string(root().join("template.yaml")).unwrap();
    Template { doc: serde_yaml::from_str(&text).unwrap(), given: BTreeMap::new() }
}

/// The template deployed with a JWT authorizer (the parameters a real deploy needs).
fn load_with_authorizer() -> Template {
    let mut t = load();
    t.given.insert("JwtIssuer".into(), "https://issuer.example".into());
    t.given.insert("JwtAudience".into(), "client-id".into());
    t
}

/// `(name, argument)` of an intrinsic function in short (`!Sub x`) or long (`Fn::Sub: x`,
/// `Ref: x`) form; the name has no `!` or `Fn::`.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            if k == "Ref" {
                Some(("Ref".to_owned(), arg))
            } else {
                k.strip_prefix("Fn::").map(|name| (name.to_owned(), arg))
            }
        }
        _ => None,
    }
}

/// `v` as a list: a sequence, or one value.
fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    }
}

/// The logical id of `!GetAtt Id.Arn` / `Fn::GetAtt: [Id, Arn]`.
fn get_att_arn(v: &Value) -> Option<&str> {
    let (name, arg) = intrinsic(v)?;
    if name != "GetAtt" {
        return None;
    }
    match arg {
        Value::String(s) => s.strip_suffix(".Arn"),
        Value::Sequence(s) if s.len() == 2 && s[1].as_str() == Some("Arn") => s[0].as_str(),
        _ => None,
    }
}

impl Template {
    fn section(&self, name: &str) -> &serde_yaml::Mapping {
        self.doc.get(name).and_then(Value::as_mapping).unwrap_or_else(|| panic!("no {name} section"))
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.section("Resources").iter().map(|(k, v)| (k.as_str().unwrap(), v))
    }

    fn resource(&self, id: &str) -> &Value {
        self.section("Resources").get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"].as_str() == Some(ty))
    }

    fn functions(&self) -> Vec<Function<'_>> {
        self.of_type("AWS::Serverless::Function")
            .map(|(id, r)| Function {
                id,
                binary: r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}: no Metadata.BuildProperties.Binary"))
                    .to_owned(),
                props: &r["Properties"],
            })
            .collect()
    }

    fn function(&self, binary: &str) -> Function<'_> {
        let mut found = self.functions().into_iter().filter(|f| f.binary == binary);
        let f = found.next().unwrap_or_else(|| panic!("no function builds {binary}"));
        assert!(found.next().is_none(), "two functions build {binary}");
        f
    }

    /// A function property, or the Globals' one.
    fn function_property<'a>(&'a self, f: &Function<'a>, name: &str) -> Option<&'a Value> {
        f.props.get(name).or_else(|| self.doc["Globals"]["Function"].get(name))
    }

    /// A function's environment as deployed: the Globals' variables overridden by its own,
    /// resolved to strings.
    fn environment(&self, f: &Function<'_>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for vars in [
            &self.doc["Globals"]["Function"]["Environment"]["Variables"],
            &f.props["Environment"]["Variables"],
        ] {
            for (k, v) in vars.as_mapping().into_iter().flatten() {
                let k = k.as_str().unwrap().to_owned();
                let v = self.resolve(v).unwrap_or_else(|| panic!("{}: cannot resolve {k}: {v:?}", f.id));
                env.insert(k, v);
            }
        }
        env
    }

    /// `v` as CloudFormation would resolve it with every parameter at its default, in stack
    /// [`STACK`]; `None` for what this test does not model.
    fn resolve(&self, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                let (name, arg) = intrinsic(v)?;
                match name.as_str() {
                    "Ref" => self.resolve_ref(arg.as_str()?),
                    "Sub" => self.resolve_sub(arg.as_str()?),
                    "GetAtt" => self.resolve_arn(get_att_arn(v)?),
                    "If" => {
                        let branch = if self.condition(arg[0].as_str()?)? { &arg[1] } else { &arg[2] };
                        self.resolve(branch)
                    }
                    _ => None,
                }
            }
        }
    }

    /// The value of a condition of the Conditions section.
    fn condition(&self, name: &str) -> Option<bool> {
        self.evaluate(self.section("Conditions").get(name)?)
    }

    /// A condition function (`!Not`, `!Equals`, `!And`, `!Or`, `!Condition`).
    fn evaluate(&self, v: &Value) -> Option<bool> {
        let (name, arg) = intrinsic(v)?;
        match name.as_str() {
            "Not" => Some(!self.evaluate(list(arg)[0])?),
            "Equals" => Some(self.resolve(&arg[0])? == self.resolve(&arg[1])?),
            "And" => list(arg).into_iter().try_fold(true, |all, c| Some(all && self.evaluate(c)?)),
            "Or" => list(arg).into_iter().try_fold(false, |any, c| Some(any || self.evaluate(c)?)),
            "Condition" => self.condition(arg.as_str()?),
            _ => None,
        }
    }

    fn resolve_ref(&self, name: &str) -> Option<String> {
        if let Some(value) = self.given.get(name) {
            return Some(value.clone());
        }
        match name {
            "AWS::StackName" => return Some(STACK.into()),
            "AWS::AccountId" => return Some(ACCOUNT.into()),
            "AWS::Region" => return Some(REGION.into()),
            "AWS::Partition" => return Some("aws".into()),
            _ => {}
        }
        if let Some(p) = self.section("Parameters").get(name) {
            return Some(p.get("Default").and_then(|d| self.resolve(d)).unwrap_or_default());
        }
        let r = self.resource(name);
        match r["Type"].as_str()? {
            "AWS::S3::Bucket" => self.resolve(&r["Properties"]["BucketName"]),
            _ => None,
        }
    }

    /// The ARN of a bucket resource.
    fn resolve_arn(&self, id: &str) -> Option<String> {
        let r = self.resource(id);
        match r["Type"].as_str()? {
            "AWS::S3::Bucket" => Some(format!("arn:aws:s3:::{}", self.resolve_ref(id)?)),
            "AWS::Logs::LogGroup" => {
                let name = self.resolve(&r["Properties"]["LogGroupName"])?;
                Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"))
            }
            "AWS::SQS::Queue" => Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{id}")),
            _ => None,
        }
    }

    /// The logical id of a function's role (`Role: !GetAtt <id>.Arn`).
    fn role_of<'a>(&'a self, f: &Function<'a>) -> &'a str {
        get_att_arn(&f.props["Role"]).unwrap_or_else(|| panic!("{}: Role is not !GetAtt <role>.Arn", f.id))
    }

    fn resolve_sub(&self, template: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}')? + start;
            let var = &rest[start + 2..end];
            let value = match var.strip_suffix(".Arn") {
                Some(id) => self.resolve_arn(id)?,
                None => self.resolve_ref(var)?,
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// The bucket whose notifications trigger the functions (exactly one).
    fn source_bucket(&self) -> (&str, &Value) {
        let mut found = self
            .of_type("AWS::S3::Bucket")
            .filter(|(_, r)| r["Properties"].get("NotificationConfiguration").is_some());
        let source = found.next().expect("no bucket has notifications");
        assert!(found.next().is_none(), "more than one bucket has notifications");
        source
    }

    /// Every IAM statement in the template: functions' inline policies, bucket and queue
    /// policies. `(owner, statement)`.
    fn statements(&self) -> Vec<(&str, &Value)> {
        fn walk<'a>(owner: &'a str, v: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
            match v {
                Value::Mapping(m) => {
                    for (k, child) in m {
                        if k.as_str() == Some("Statement") {
                            out.extend(list(child).into_iter().map(|s| (owner, s)));
                        } else {
                            walk(owner, child, out);
                        }
                    }
                }
                Value::Sequence(s) => s.iter().for_each(|c| walk(owner, c, out)),
                Value::Tagged(t) => walk(owner, &t.value, out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (id, r) in self.resources() {
            walk(id, r, &mut out);
        }
        out
    }

    /// `action -> resolved resources` of a function's Allow statements.
    fn grants(&self, f: &Function<'_>) -> BTreeMap<String, BTreeSet<String>> {
        let role = self.role_of(f);
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (owner, s) in self.statements() {
            // The role's trust policy (who may assume it) is not a grant.
            let trust = s["Action"].as_str() == Some("sts:AssumeRole");
            if owner != role || trust || s["Effect"].as_str() != Some("Allow") {
                continue;
            }
            let resources: Vec<String> = list(&s["Resource"])
                .into_iter()
                .map(|r| self.resolve(r).unwrap_or_else(|| panic!("{owner}: cannot resolve resource {r:?}")))
                .collect();
            for action in list(&s["Action"]) {
                out.entry(action.as_str().unwrap().to_owned()).or_default().extend(resources.iter().cloned());
            }
        }
        out
    }
}

/// The binaries of the crates under functions/: `(directory, binary name)`.
fn function_crates() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("functions")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let manifest: toml::Table = fs::read_to_string(&manifest).unwrap().parse().unwrap();
        let dir = dir.file_name().unwrap().to_string_lossy().into_owned();
        let bins: Vec<String> = match manifest.get("bin").and_then(toml::Value::as_array) {
            Some(bins) => bins.iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect(),
            None => vec![manifest["package"]["name"].as_str().unwrap().to_owned()],
        };
        assert_eq!(bins.len(), 1, "functions/{dir} must build exactly one binary (one Lambda function)");
        out.extend(bins.into_iter().map(|b| (dir.clone(), b)));
    }
    assert!(!out.is_empty(), "no crates under functions/");
    out
}

fn s3_arn(bucket: &str, path: &str) -> String {
    format!("arn:aws:s3:::{bucket}{path}")
}

/// The ARN of a function's own log group (with its streams).
fn log_group_arn(binary: &str) -> String {
    format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{STACK}/{binary}:*")
}

fn set<const N: usize>(items: [String; N]) -> BTreeSet<String> {
    items.into_iter().collect()
}

#[test]
fn every_function_crate_has_exactly_one_resource_and_back() {
    let t = load();
    let crates = function_crates();
    let functions = t.functions();
    for (dir, binary) in &crates {
        let n = functions.iter().filter(|f| &f.binary == binary).count();
        assert_eq!(n, 1, "functions/{dir} (binary {binary}) has {n} resources in template.yaml, expected 1");
    }
    for f in &functions {
        let exists = crates.iter().any(|(_, b)| b == &f.binary);
        assert!(exists, "{}: Binary {} is not a crate under functions/", f.id, f.binary);
    }
}

#[test]
fn functions_are_built_by_cargo_lambda_for_arm64() {
    let t = load();
    for f in t.functions() {
        let r = t.resource(f.id);
        assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{}", f.id);
        assert_eq!(f.props["CodeUri"].as_str(), Some("./"), "{}", f.id);
        let prop = |name| t.function_property(&f, name).cloned().unwrap_or(Value::Null);
        assert_eq!(prop("Runtime").as_str(), Some("provided.al2023"), "{}", f.id);
        assert_eq!(prop("Handler").as_str(), Some("bootstrap"), "{}", f.id);
        assert_eq!(prop("Architectures"), serde_yaml::from_str::<Value>("[arm64]").unwrap(), "{}", f.id);
        let log_group = f.props["LoggingConfig"]["LogGroup"].clone();
        let (_, group) = intrinsic(&log_group).unwrap_or_else(|| panic!("{}: LoggingConfig.LogGroup", f.id));
        let group = t.resource(group.as_str().unwrap());
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{}", f.id);
        assert!(group["Properties"].get("RetentionInDays").is_some(), "{}: log retention", f.id);
    }
}

#[test]
fn trigger_prefixes_route_to_their_operation() {
    let t = load();
    let (source_id, source) = t.source_bucket();
    let source_name = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    let depends_on: Vec<&str> = list(&source["DependsOn"]).into_iter().filter_map(Value::as_str).collect();
    let configs = list(&source["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]);
    let mut routed = BTreeSet::new();
    let mut prefixes = Vec::new();
    for c in configs {
        assert_eq!(c["Event"].as_str(), Some("s3:ObjectCreated:*"), "{c:?}");
        let rules = list(&c["Filter"]["S3Key"]["Rules"]);
        assert_eq!(rules.len(), 1, "one prefix rule per notification: {c:?}");
        assert_eq!(rules[0]["Name"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("prefix"));
        let prefix = rules[0]["Value"].as_str().unwrap();
        let id =
            get_att_arn(&c["Function"]).unwrap_or_else(|| panic!("{prefix}: Function is not !GetAtt X.Arn"));
        let f = t
            .functions()
            .into_iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{id} is not a function"));
        assert_eq!(format!("{}/", f.binary), prefix, "{prefix} routes to {}", f.binary);
        let env = t.environment(&f);
        assert_eq!(env.get("IMGFN_TRIGGER_PREFIX").map(String::as_str), Some(prefix), "{id}");
        assert_eq!(env.get("IMGFN_SOURCE_BUCKET"), Some(&source_name), "{id}");
        assert!(routed.insert(f.binary.clone()), "{} is routed twice", f.binary);
        prefixes.push(prefix.to_owned());

        // S3 may invoke it, from this bucket and account only, before the bucket is configured.
        let permission = t
            .of_type("AWS::Lambda::Permission")
            .find(|(_, p)| {
                let p = &p["Properties"];
                p["Principal"].as_str() == Some("s3.amazonaws.com")
                    && intrinsic(&p["FunctionName"]).and_then(|(_, v)| v.as_str()) == Some(id)
            })
            .unwrap_or_else(|| panic!("{id}: no AWS::Lambda::Permission for s3.amazonaws.com"));
        assert_eq!(t.resolve(&permission.1["Properties"]["SourceArn"]), Some(s3_arn(&source_name, "")));
        assert_eq!(t.resolve(&permission.1["Properties"]["SourceAccount"]).as_deref(), Some(ACCOUNT));
        assert!(depends_on.contains(&permission.0), "{source_id} must DependsOn {}", permission.0);
    }
    let ops: BTreeSet<String> = ops::triggers().map(|op| op.name.to_owned()).collect();
    assert_eq!(routed, ops, "every operation has exactly one trigger");
    // No prefix contains another, the uploads prefix or the prefixes the functions skip.
    for a in &prefixes {
        for b in prefixes.iter().map(String::as_str).chain(["uploads/", "processed/", "errors/", "assets/"]) {
            assert!(a == b || !(a.starts_with(b) || b.starts_with(a.as_str())), "{a} overlaps {b}");
        }
    }
}

#[test]
fn the_output_bucket_triggers_nothing() {
    let t = load();
    let (source_id, source) = t.source_bucket();
    let source_name = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    let others: Vec<_> = t.of_type("AWS::S3::Bucket").filter(|(id, _)| *id != source_id).collect();
    assert_eq!(others.len(), 1, "one output bucket");
    let (_, output) = others[0];
    assert!(output["Properties"].get("NotificationConfiguration").is_none());
    let output_name = t.resolve(&output["Properties"]["BucketName"]).unwrap();
    assert_ne!(output_name, source_name);
    for f in t.functions() {
        let env = t.environment(&f);
        assert_eq!(env.get("IMGFN_OUTPUT_BUCKET"), Some(&output_name), "{}", f.id);
        assert_eq!(env.get("IMGFN_SOURCE_BUCKET"), Some(&source_name), "{}", f.id);
    }
}

#[test]
fn no_policy_allows_a_wildcard_action_or_a_bucket_wide_write() {
    let t = load();
    let statements = t.statements();
    assert!(statements.len() > 10, "the policies were not found");
    for (owner, s) in statements {
        match s["Effect"].as_str() {
            // Deny statements (non-TLS requests) are meant to cover every action.
            Some("Deny") => continue,
            Some("Allow") => {}
            other => panic!("{owner}: Effect {other:?}"),
        }
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none(), "{owner}: {s:?}");
        if s["Action"].as_str() == Some("sts:AssumeRole") {
            // A role's trust policy: Lambda, and only Lambda, may assume it.
            assert_eq!(s["Principal"]["Service"].as_str(), Some("lambda.amazonaws.com"), "{owner}: {s:?}");
            continue;
        }
        for action in list(&s["Action"]) {
            let action = action.as_str().unwrap_or_else(|| panic!("{owner}: action {action:?}"));
            assert!(!action.contains('*'), "{owner}: wildcard action {action}");
        }
        let writes = list(&s["Action"]).iter().any(|a| {
            matches!(a.as_str(), Some("s3:PutObject" | "s3:DeleteObject" | "s3:DeleteObjectVersion"))
        });
        for r in list(&s["Resource"]) {
            let r = t.resolve(r).unwrap_or_else(|| panic!("{owner}: cannot resolve {r:?}"));
            assert_ne!(r, "*", "{owner}: Resource *");
            if writes {
                // arn:aws:s3:::<bucket>/<prefix>/* with a literal, non-empty prefix.
                let path = r.strip_prefix("arn:aws:s3:::").and_then(|r| r.split_once('/')).map(|(_, p)| p);
                let prefix = path.and_then(|p| p.strip_suffix('*')).unwrap_or("");
                assert!(
                    prefix.len() > 1 && prefix.ends_with('/') && !prefix.contains('*'),
                    "{owner}: write to {r} is not confined to a prefix"
                );
            }
        }
    }
}

#[test]
fn s3_functions_read_only_their_prefix_and_write_only_their_outputs() {
    let t = load();
    let (_, source) = t.source_bucket();
    let src = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    for op in ops::triggers() {
        let f = t.function(op.name);
        let out = t.environment(&f)["IMGFN_OUTPUT_BUCKET"].clone();
        let p = format!("{}/", op.name);
        let logs = log_group_arn(op.name);
        let expected: BTreeMap<String, BTreeSet<String>> = [
            ("logs:CreateLogStream", set([logs.clone()])),
            ("logs:PutLogEvents", set([logs])),
            ("s3:GetObject", set([s3_arn(&src, &format!("/{p}*")), s3_arn(&src, "/assets/*")])),
            ("s3:ListBucket", set([s3_arn(&src, "")])),
            ("s3:PutObject", set([s3_arn(&out, &format!("/{p}*")), s3_arn(&out, &format!("/errors/{p}*"))])),
            ("s3:DeleteObject", set([s3_arn(&out, &format!("/errors/{p}*"))])),
            ("sqs:SendMessage", set([format!("arn:aws:sqs:{REGION}:{ACCOUNT}:DeadLetterQueue")])),
        ]
        .into_iter()
        .map(|(a, r)| (a.to_owned(), r))
        .collect();
        assert_eq!(t.grants(&f), expected, "{}", f.id);
    }
}

#[test]
fn api_functions_sign_and_read_only_their_prefixes() {
    let t = load();
    let api: Vec<_> = t.functions().into_iter().filter(|f| f.binary.starts_with("api-")).collect();
    assert_eq!(api.len(), 3, "the three API functions");
    let (_, source) = t.source_bucket();
    let src = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    let op_prefixes = || ops::triggers().map(|op| format!("{}/", op.name));
    for f in api {
        let env = t.environment(&f);
        let out = env["IMGFN_OUTPUT_BUCKET"].clone();
        let uploads = env.get("IMGFN_UPLOAD_PREFIX").cloned().unwrap_or_else(|| "uploads/".into());
        let processed = env.get("IMGFN_PROCESSED_PREFIX").cloned().unwrap_or_else(|| "processed/".into());
        let mut grants = t.grants(&f);
        let logs = set([log_group_arn(&f.binary)]);
        assert_eq!(
            grants.remove("logs:CreateLogStream").as_ref(),
            Some(&logs),
            "{}: its own log group",
            f.id
        );
        assert_eq!(grants.remove("logs:PutLogEvents").as_ref(), Some(&logs), "{}: its own log group", f.id);
        let upload_keys: BTreeSet<String> =
            op_prefixes().chain([uploads.clone()]).map(|p| s3_arn(&src, &format!("/{p}*"))).collect();
        match f.binary.as_str() {
            "api-uploads" => {
                let expected = BTreeMap::from([("s3:PutObject".to_owned(), upload_keys)]);
                assert_eq!(grants, expected, "{}", f.id);
            }
            "api-process" => {
                let mut reads = upload_keys;
                reads.insert(s3_arn(&src, "/assets/*"));
                reads.insert(s3_arn(&out, &format!("/{processed}*")));
                assert_eq!(grants["s3:GetObject"], reads, "{}", f.id);
                assert_eq!(
                    grants["s3:PutObject"],
                    set([s3_arn(&out, &format!("/{processed}*"))]),
                    "{}",
                    f.id
                );
                assert_eq!(grants["s3:ListBucket"], set([s3_arn(&src, ""), s3_arn(&out, "")]), "{}", f.id);
                assert_eq!(grants.len(), 3, "{}: {grants:?}", f.id);
            }
            "api-images" => {
                let reads: BTreeSet<String> = op_prefixes()
                    .chain([processed.clone(), "errors/".into()])
                    .map(|p| s3_arn(&out, &format!("/{p}*")))
                    .collect();
                assert_eq!(grants["s3:GetObject"], reads, "{}", f.id);
                assert_eq!(grants["s3:ListBucket"], set([s3_arn(&out, "")]), "{}", f.id);
                assert_eq!(grants.len(), 2, "{}: {grants:?}", f.id);
            }
            other => panic!("unknown API function {other}"),
        }
    }
}

#[test]
fn api_routes_reach_their_functions() {
    let t = load();
    let (_, api) = t.of_type("AWS::Serverless::HttpApi").next().expect("no HTTP API");
    let paths = &api["Properties"]["DefinitionBody"]["paths"];
    let routes = [
        ("/uploads", "post", "api-uploads"),
        ("/process", "post", "api-process"),
        ("/images/{key+}", "get", "api-images"),
    ];
    assert_eq!(paths.as_mapping().map(|m| m.len()), Some(routes.len()), "routes: {paths:?}");
    for (path, method, binary) in routes {
        let op = &paths[path][method];
        let integration = &op["x-amazon-apigateway-integration"];
        assert_eq!(integration["type"].as_str(), Some("aws_proxy"), "{path}");
        assert_eq!(integration["payloadFormatVersion"].as_str(), Some("2.0"), "{path}");
        let (_, uri) = intrinsic(&integration["uri"]).unwrap();
        let f = t.function(binary);
        assert!(
            uri.as_str().unwrap().contains(&format!("${{{}.Arn}}", f.id)),
            "{path} does not invoke {}",
            f.id
        );
        // Secured exactly when the authorizer condition holds.
        let (name, arg) =
            intrinsic(&op["security"]).unwrap_or_else(|| panic!("{path}: security is not conditional"));
        assert_eq!(name, "If");
        assert_eq!(arg[0].as_str(), Some("HasAuthorizer"), "{path}");
        let method_upper = method.to_ascii_uppercase();
        let route = path.replace("{key+}", "*");
        let allowed = t.of_type("AWS::Lambda::Permission").any(|(_, p)| {
            let p = &p["Properties"];
            p["Principal"].as_str() == Some("apigateway.amazonaws.com")
                && intrinsic(&p["FunctionName"]).and_then(|(_, v)| v.as_str()) == Some(f.id)
                && intrinsic(&p["SourceArn"])
                    .and_then(|(_, v)| v.as_str())
                    .is_some_and(|arn| arn.ends_with(&format!("/*/{method_upper}{route}")))
        });
        assert!(allowed, "{}: no API Gateway permission for {method_upper} {path}", f.id);
    }
}

#[test]
fn s3_failures_are_retried_then_dead_lettered_and_alarmed() {
    let t = load();
    for op in ops::triggers() {
        let f = t.function(op.name);
        let config = &f.props["EventInvokeConfig"];
        let retries = config["MaximumRetryAttempts"].as_u64().unwrap_or_else(|| panic!("{}: retries", f.id));
        assert!(retries <= 2, "{}", f.id);
        let on_failure = &config["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{}", f.id);
        let queue = get_att_arn(&on_failure["Destination"]).unwrap();
        assert_eq!(t.resource(queue)["Type"].as_str(), Some("AWS::SQS::Queue"), "{}", f.id);
        let alarmed = t.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
            let a = &a["Properties"];
            a["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
                && list(&a["Dimensions"]).iter().any(|d| {
                    intrinsic(&d["Value"]).and_then(|(_, v)| v.as_str()).is_some_and(|v| v.starts_with(queue))
                })
        });
        assert!(alarmed, "no alarm on the depth of {queue}");
    }
}

#[test]
fn default_configuration_is_accepted_by_the_plumbing() {
    let t = load();
    for op in ops::triggers() {
        let f = t.function(op.name);
        let env = t.environment(&f);
        let config = Config::from_lookup(op, |k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{}: the deployed configuration is refused: {e}", f.id));
        assert_eq!(config.trigger_prefix, format!("{}/", op.name));
        // With every parameter at its default, the function runs the registry's defaults.
        let registry = Config::from_lookup(op, |k| match k {
            "IMGFN_PARAMS" | "IMGFN_OUTPUT" => None,
            _ => env.get(k).cloned(),
        })
        .unwrap();
        assert_eq!(
            config.defaults, registry.defaults,
            "{}: template defaults differ from the registry",
            f.id
        );
    }
}

#[test]
fn samconfig_overrides_every_parameter_with_its_default() {
    let t = load();
    let text = fs::read_to_string(root().join("samconfig.toml")).unwrap();
    let config: toml::Table = text.parse().unwrap();
    let deploy = &config["default"]["deploy"]["parameters"];
    assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
    assert_eq!(deploy["resolve_s3"].as_bool(), Some(true));
    assert!(deploy.get("region").is_none(), "the region is the user's choice");
    let mut overrides = BTreeMap::new();
    for item in deploy["parameter_overrides"].as_array().unwrap() {
        let (key, value) = item.as_str().unwrap().split_once('=').unwrap();
        // SAM's syntax: a value with quotes or spaces is wrapped in '...' or "...".
        let unquoted = ['\'', '"']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        assert!(overrides.insert(key.to_owned(), unquoted.to_owned()).is_none(), "{key} twice");
    }
    let parameters = t.section("Parameters");
    let names: BTreeSet<&str> = parameters.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(overrides.keys().map(String::as_str).collect::<BTreeSet<_>>(), names);
    for (key, value) in &overrides {
        let default = t.resolve(&parameters[key.as_str()]["Default"]).unwrap_or_default();
        assert_eq!(value, &default, "samconfig.toml {key} differs from the template's default");
        if value.starts_with('{') {
            serde_json::from_str::<serde_json::Value>(value).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}

#[test]
fn every_s3_function_has_a_sample_event_under_its_prefix() {
    for op in ops::triggers() {
        let path = root().join(format!("events/s3-{}.json", op.name));
        let event: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let key = event["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("{}/", op.name)), "{}: key {key}", path.display());
    }
}

/// The delivery functions behind the CDN: the renderer (its Function URL is an origin) and the
/// refresh after an overwrite.
const DELIVERY: [&str; 2] = ["render", "refresh"];

#[test]
fn every_function_crate_is_a_registry_function_or_an_api_route() {
    let triggers: BTreeSet<&str> = ops::triggers().map(|op: &OpSpec| op.name).collect();
    let mut crates = BTreeSet::new();
    for (dir, binary) in function_crates() {
        assert_eq!(dir, binary, "functions/{dir} builds {binary}: a function's folder is its name");
        assert!(
            triggers.contains(binary.as_str()) || binary.starts_with("api-") || DELIVERY.contains(&binary.as_str()),
            "functions/{dir} is neither an S3-triggered function of the registry, an API route nor a delivery function"
        );
        crates.insert(binary);
    }
    for name in triggers {
        assert!(crates.contains(name), "the registry's {name} has no crate functions/{name}");
    }
}

#[test]
fn every_api_route_has_a_sample_request() {
    let t = load();
    let crates = function_crates();
    let (_, api) = t.of_type("AWS::Serverless::HttpApi").next().expect("no HTTP API");
    let paths = api["Properties"]["DefinitionBody"]["paths"].as_mapping().unwrap();
    for (path, methods) in paths {
        for (method, op) in methods.as_mapping().unwrap() {
            let (_, uri) = intrinsic(&op["x-amazon-apigateway-integration"]["uri"]).unwrap();
            let f = t
                .functions()
                .into_iter()
                .find(|f| uri.as_str().unwrap().contains(&format!("${{{}.Arn}}", f.id)))
                .unwrap();
            assert!(crates.iter().any(|(_, b)| *b == f.binary), "{}: no crate under functions/", f.binary);
            // events/<binary>.json: an API Gateway HTTP API (payload v2) request for the route.
            let file = root().join(format!("events/{}.json", f.binary));
            let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            let route =
                format!("{} {}", method.as_str().unwrap().to_ascii_uppercase(), path.as_str().unwrap());
            assert_eq!(event["version"], "2.0", "{}", file.display());
            assert_eq!(event["routeKey"].as_str(), Some(route.as_str()), "{}", file.display());
            assert_eq!(
                event["requestContext"]["routeKey"].as_str(),
                Some(route.as_str()),
                "{}",
                file.display()
            );
        }
    }
}

#[test]
fn api_configuration_is_accepted_by_the_plumbing() {
    let t = load();
    for binary in ["api-uploads", "api-process", "api-images"] {
        let f = t.function(binary);
        let env = t.environment(&f);
        imgfn_lambda::api::ApiConfig::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{}: the deployed configuration is refused: {e}", f.id));
    }
}

/// `imgfn-local` (the README's run command) runs what the template deploys with an authorizer:
/// each function with the template's default configuration and trigger prefix, and the API with
/// the template's, the bucket names aside (and the API's CORS origins, `*` locally).
#[test]
fn the_local_stack_runs_the_deployed_configuration() {
    let t = load_with_authorizer();
    let mut local = imgfn_local::StackConfig::new();
    let env_of = |binary: &str| {
        let f = t.function(binary);
        let mut env = t.environment(&f);
        env.insert("IMGFN_SOURCE_BUCKET".into(), local.source_bucket.clone());
        env.insert("IMGFN_OUTPUT_BUCKET".into(), local.output_bucket.clone());
        // Lambda tells the function its memory; the pixel limits follow it.
        let memory = t.function_property(&f, "MemorySize").and_then(|v| t.resolve(v)).unwrap();
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory);
        env
    };
    for op in ops::triggers() {
        let env = env_of(op.name);
        let deployed = Config::from_lookup(op, |k| env.get(k).cloned()).unwrap();
        let here = local.function_config(op).unwrap();
        assert_eq!(
            format!("{here:?}"),
            format!("{deployed:?}"),
            "{}: imgfn-local differs from template.yaml",
            op.name
        );
    }
    for binary in ["api-uploads", "api-process", "api-images"] {
        let env = env_of(binary);
        local.vars.retain(|(k, _)| k != "IMGFN_CORS_ORIGINS");
        local
            .vars
            .extend(env.get("IMGFN_CORS_ORIGINS").map(|v| ("IMGFN_CORS_ORIGINS".to_owned(), v.clone())));
        let deployed = imgfn_lambda::api::ApiConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
        let here = local.api_config().unwrap();
        assert_eq!(
            format!("{here:?}"),
            format!("{deployed:?}"),
            "{binary}: imgfn-local differs from template.yaml"
        );
    }
}

/// A default deploy exposes nothing to strangers: without an authorizer, the deploy stops
/// unless the API is opened on purpose, and the functions know which it is.
#[test]
fn an_open_api_is_opened_on_purpose_only() {
    let t = load();
    let parameters = t.section("Parameters");
    assert_eq!(parameters["AllowOpenApi"]["Default"].as_str(), Some("false"));
    assert_eq!(parameters["JwtIssuer"]["Default"].as_str(), Some(""));
    let rules = t.section("Rules");
    let assertions: Vec<&Value> = rules.values().flat_map(|r| list(&r["Assertions"])).collect();
    let guards = |assert: &Value| {
        let text = format!("{assert:?}");
        ["JwtIssuer", "JwtAudience", "AllowOpenApi"].iter().all(|p| text.contains(p))
    };
    let rule = assertions
        .iter()
        .find(|a| guards(&a["Assert"]))
        .expect("no rule asserts an authorizer or AllowOpenApi");
    assert!(rule["AssertDescription"].as_str().is_some_and(|d| d.contains("AllowOpenApi=true")));
    // The assertion, evaluated as CloudFormation would: false at the defaults, true with an
    // authorizer or with the API opened on purpose.
    let holds = |t: &Template| t.evaluate(&rule["Assert"]).unwrap();
    assert!(!holds(&t), "the defaults must not deploy an open API");
    assert!(holds(&load_with_authorizer()));
    let mut open = load();
    open.given.insert("AllowOpenApi".into(), "true".into());
    assert!(holds(&open));
    // The API functions are told which, and require an identity with an authorizer.
    for binary in ["api-uploads", "api-process", "api-images"] {
        let f = t.function(binary);
        assert_eq!(load_with_authorizer().environment(&f)["IMGFN_API_ACCESS"], "authorizer", "{binary}");
        assert_eq!(open.environment(&f)["IMGFN_API_ACCESS"], "open", "{binary}");
    }
}

#[test]
fn every_function_has_its_own_role_with_its_own_log_group_only() {
    let t = load();
    for f in t.functions() {
        assert!(f.props.get("Policies").is_none(), "{}: policies belong in its role", f.id);
        let role = t.resource(t.role_of(&f));
        assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{}", f.id);
        assert!(role["Properties"].get("ManagedPolicyArns").is_none(), "{}: no managed policy", f.id);
        let grants = t.grants(&f);
        let own = set([log_group_arn(&f.binary)]);
        assert_eq!(grants.get("logs:PutLogEvents"), Some(&own), "{}", f.id);
        assert!(grants.keys().filter(|a| a.starts_with("logs:")).count() == 2, "{}: {grants:?}", f.id);
    }
    let roles = t.of_type("AWS::IAM::Role").count();
    assert_eq!(roles, t.functions().len(), "one role per function");
}

#[test]
fn s3_functions_and_process_have_a_reserved_concurrency_by_default() {
    let t = load();
    let default = t.resolve(&t.section("Parameters")["ReservedConcurrency"]["Default"]).unwrap();
    assert!(default.parse::<u32>().unwrap() > 0, "reserved by default");
    let names = ops::triggers().map(|op| op.name).chain(["api-process"]);
    for name in names {
        let f = t.function(name);
        let reserved = t.resolve(&f.props["ReservedConcurrentExecutions"]);
        assert_eq!(reserved.as_deref(), Some(default.as_str()), "{}", f.id);
    }
}

#[test]
fn every_prefix_expires_after_its_retention() {
    let t = load();
    let rules_of = |bucket: &str| -> Vec<(Option<String>, &Value)> {
        list(&t.resource(bucket)["Properties"]["LifecycleConfiguration"]["Rules"])
            .into_iter()
            .map(|r| (r["Prefix"].as_str().map(str::to_owned), r))
            .collect()
    };
    let expiring = |bucket: &str, prefix: &str| {
        let rules = rules_of(bucket);
        let (_, rule) = rules
            .iter()
            .find(|(p, _)| p.as_deref() == Some(prefix))
            .unwrap_or_else(|| panic!("{bucket}: no lifecycle rule for {prefix}"));
        let days = format!("{:?}", rule["ExpirationInDays"]);
        assert!(
            days.contains("RetentionDays"),
            "{bucket} {prefix}: the expiry comes from a parameter: {days}"
        );
    };
    expiring("SourceBucket", "uploads/");
    expiring("OutputBucket", "processed/");
    expiring("OutputBucket", "errors/");
    for op in ops::triggers() {
        expiring("SourceBucket", &format!("{}/", op.name));
        expiring("OutputBucket", &format!("{}/", op.name));
    }
    for bucket in ["SourceBucket", "OutputBucket"] {
        let noncurrent = rules_of(bucket).iter().any(|(_, r)| r.get("NoncurrentVersionExpiration").is_some());
        assert!(noncurrent, "{bucket}: noncurrent versions expire");
    }
}

#[test]
fn alarms_watch_failures_throttles_concurrency_deliveries_and_api_errors() {
    let t = load();
    let alarms: Vec<&Value> = t.of_type("AWS::CloudWatch::Alarm").map(|(_, a)| &a["Properties"]).collect();
    let watches = |metric: &str, function_id: &str| {
        alarms.iter().any(|a| {
            let text = format!("{a:?}");
            text.contains(&format!("\"{metric}\"")) && text.contains(&format!("\"{function_id}\""))
        })
    };
    for op in ops::triggers() {
        let f = t.function(op.name);
        for metric in ["Errors", "Throttles", "DestinationDeliveryFailures", "ConcurrentExecutions"] {
            assert!(watches(metric, f.id), "{}: no alarm on {metric}", f.id);
        }
    }
    assert!(watches("ConcurrentExecutions", t.function("api-process").id));
    assert!(watches("5xx", "HttpApi"), "no alarm on the API's 5xx");
    for a in &alarms {
        assert!(a.get("AlarmActions").is_some(), "every alarm notifies when AlarmEmail is set: {a:?}");
    }
    let (_, api) = t.of_type("AWS::Serverless::HttpApi").next().unwrap();
    let format = api["Properties"]["AccessLogSettings"]["Format"].as_str().unwrap();
    assert!(format.contains("$context.authorizer.claims.sub"), "the access log names the caller");
}
