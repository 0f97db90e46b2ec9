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
/// What the CDN's distribution resolves to (`Ref`, `DomainName`).
const DISTRIBUTION_ID: &str = "E2EXAMPLE0CDN";
const DISTRIBUTION_DOMAIN: &str = "d111111abcdef8.cloudfront.net";

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
            // What `Ref` returns for these: a secret's ARN, a distribution's id.
            "AWS::SecretsManager::Secret" => {
                Some(format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}"))
            }
            "AWS::CloudFront::Distribution" => Some(DISTRIBUTION_ID.into()),
            _ => None,
        }
    }

    /// `${Id.Attribute}` of a `!Sub`: the attributes this test models.
    fn resolve_attribute(&self, id: &str, attribute: &str) -> Option<String> {
        match (self.resource(id)["Type"].as_str()?, attribute) {
            (_, "Arn") => self.resolve_arn(id),
            ("AWS::CloudFront::Distribution", "DomainName") => Some(DISTRIBUTION_DOMAIN.into()),
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
            let value = match var.split_once('.') {
                Some((id, attribute)) if !var.starts_with("AWS::") => {
                    self.resolve_attribute(id, attribute)?
                }
                _ => self.resolve_ref(var)?,
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
                            // A statement under `!If [condition, statement, !Ref AWS::NoValue]`
                            // counts as a statement (either branch may be deployed).
                            for s in list(child) {
                                match intrinsic(s) {
                                    Some((name, arg)) if name == "If" => out.extend(
                                        list(arg)
                                            .into_iter()
                                            .skip(1)
                                            .filter(|b| b.is_mapping())
                                            .map(|b| (owner, b)),
                                    ),
                                    _ => out.push((owner, s)),
                                }
                            }
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
        // A WAF rule's `Statement` is a match condition, not an IAM statement.
        for (id, r) in self
            .resources()
            .filter(|(_, r)| !r["Type"].as_str().unwrap_or_default().starts_with("AWS::WAFv2::"))
        {
            walk(id, r, &mut out);
        }
        out
    }

    /// `action -> resolved resources` of a function's Allow statements: its role's, and those
    /// of the `AWS::IAM::RolePolicy` resources attached to its role.
    fn grants(&self, f: &Function<'_>) -> BTreeMap<String, BTreeSet<String>> {
        let role = self.role_of(f);
        let attached: Vec<&str> = self
            .of_type("AWS::IAM::RolePolicy")
            .filter(|(_, p)| {
                intrinsic(&p["Properties"]["RoleName"]).and_then(|(_, r)| r.as_str()) == Some(role)
            })
            .map(|(id, _)| id)
            .collect();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (owner, s) in self.statements() {
            // The role's trust policy (who may assume it) is not a grant.
            let trust = s["Action"].as_str() == Some("sts:AssumeRole");
            if (owner != role && !attached.contains(&owner)) || trust || s["Effect"].as_str() != Some("Allow")
            {
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
                // With the CDN, it signs URLs: it reads the URL keys.
                let secret = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:UrlKeysSecret");
                assert_eq!(grants["secretsmanager:GetSecretValue"], set([secret]), "{}", f.id);
                assert_eq!(grants.len(), 4, "{}: {grants:?}", f.id);
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
    // refresh renders nothing (256 MB, so other pixel limits): its buckets and prefixes match.
    let env = env_of("refresh");
    let deployed = imgfn_lambda::api::ApiConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
    let here = local.api_config().unwrap();
    assert_eq!(
        (&here.source_bucket, &here.output_bucket, &here.rendition_prefixes),
        (&deployed.source_bucket, &deployed.output_bucket, &deployed.rendition_prefixes),
        "refresh: imgfn-local differs from template.yaml"
    );
    for binary in ["api-uploads", "api-process", "api-images", "render"] {
        let env = env_of(binary);
        local.vars.retain(|(k, _)| k != "IMGFN_CORS_ORIGINS");
        local
            .vars
            .extend(env.get("IMGFN_CORS_ORIGINS").map(|v| ("IMGFN_CORS_ORIGINS".to_owned(), v.clone())));
        let deployed = imgfn_lambda::api::ApiConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
        let mut here = local.api_config().unwrap();
        // Where the URL keys come from and where the CDN is differ by design: locally fixed
        // keys and the local edge; deployed, the secret and the distribution (the CDN tests
        // check those).
        here.url_keys = deployed.url_keys.clone();
        here.url_keys_secret.clone_from(&deployed.url_keys_secret);
        here.cdn_url.clone_from(&deployed.cdn_url);
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

// ---------------------------------------------------------------- delivery: the CDN

/// The conditions that hold wherever `name` holds: itself, and what an `!And` of it names with
/// `!Condition` (HasCdnWaf implies HasCdn).
fn implied_conditions(t: &Template, name: &str, out: &mut BTreeSet<String>) {
    if !out.insert(name.to_owned()) {
        return;
    }
    let Some((f, arg)) = t.section("Conditions").get(name).and_then(intrinsic) else { return };
    if f == "And" {
        for c in list(arg) {
            if let Some((n, Value::String(inner))) = intrinsic(c) {
                if n == "Condition" {
                    implied_conditions(t, inner, out);
                }
            }
        }
    }
}

/// The logical ids a value refers to (`Ref`, `GetAtt`, `${...}` in `Sub`), each with the
/// conditions in force where it is named (the `!If` branches it sits in; the else branch adds
/// nothing).
fn references(v: &Value, guards: &BTreeSet<String>, out: &mut Vec<(String, BTreeSet<String>)>) {
    match intrinsic(v) {
        Some((name, arg)) if name == "If" => {
            let branches = list(arg);
            let mut inner = guards.clone();
            inner.insert(branches[0].as_str().unwrap().to_owned());
            references(branches[1], &inner, out);
            references(branches[2], guards, out);
            return;
        }
        Some((name, arg)) if name == "Ref" => {
            out.push((arg.as_str().unwrap().to_owned(), guards.clone()));
            return;
        }
        Some((name, arg)) if name == "GetAtt" => {
            let id = match arg {
                Value::String(s) => s.split('.').next().unwrap().to_owned(),
                other => other[0].as_str().unwrap().to_owned(),
            };
            out.push((id, guards.clone()));
            return;
        }
        Some((name, arg)) if name == "Sub" => {
            let (text, vars) = match arg {
                Value::String(s) => (s.as_str(), None),
                other => (other[0].as_str().unwrap(), Some(&other[1])),
            };
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                let end = rest[start..].find('}').unwrap() + start;
                let var = &rest[start + 2..end];
                out.push((var.split('.').next().unwrap().to_owned(), guards.clone()));
                rest = &rest[end + 1..];
            }
            if let Some(vars) = vars {
                references(vars, guards, out);
            }
            return;
        }
        _ => {}
    }
    match v {
        Value::Mapping(m) => m.values().for_each(|c| references(c, guards, out)),
        Value::Sequence(s) => s.iter().for_each(|c| references(c, guards, out)),
        Value::Tagged(t) => references(&t.value, guards, out),
        _ => {}
    }
}

/// The condition of a resource, or of the function a SAM-generated resource belongs to
/// (`RenderFunctionUrl`, `RefreshFunctionSourceChanged`: SAM gives them their function's).
fn condition_of(t: &Template, id: &str) -> Option<String> {
    let resources = t.section("Resources");
    let owner = match resources.get(id) {
        Some(r) => r,
        None => {
            let owner = t
                .functions()
                .into_iter()
                .map(|f| f.id)
                .filter(|fid| id.starts_with(fid))
                .max_by_key(|fid| fid.len())
                .unwrap_or_else(|| panic!("{id} is neither a resource nor made by SAM from a function"));
            t.resource(owner)
        }
    };
    owner.get("Condition").and_then(Value::as_str).map(str::to_owned)
}

const CDN_TYPES: [&str; 7] = [
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::Function",
    "AWS::CloudFront::KeyValueStore",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::OriginRequestPolicy",
    "AWS::SecretsManager::Secret",
];

/// The CDN is on by default, and everything it adds exists only under `HasCdn`: a resource or
/// output that names a conditional resource is conditional too (or names it inside
/// `!If [HasCdn, ...]`), so `EnableCdn=false` deploys without a dangling reference.
#[test]
fn the_cdn_is_on_by_default_and_every_part_of_it_is_conditional() {
    let t = load();
    assert_eq!(t.section("Parameters")["EnableCdn"]["Default"].as_str(), Some("true"));
    assert_eq!(t.condition("HasCdn"), Some(true));
    let mut off = load();
    off.given.insert("EnableCdn".into(), "false".into());
    assert_eq!(off.condition("HasCdn"), Some(false));
    assert_eq!(off.condition("HasCdnWaf"), Some(false));

    for ty in CDN_TYPES.iter().chain(&["AWS::WAFv2::WebACL"]) {
        let found: Vec<_> = t.of_type(ty).collect();
        assert!(!found.is_empty() || *ty == "AWS::WAFv2::WebACL", "no {ty}");
        for (id, r) in found {
            let c = r["Condition"].as_str().unwrap_or_else(|| panic!("{id} ({ty}) has no Condition"));
            let mut implied = BTreeSet::new();
            implied_conditions(&t, c, &mut implied);
            assert!(implied.contains("HasCdn"), "{id}: Condition {c} does not imply HasCdn");
        }
    }
    for binary in DELIVERY {
        let f = t.function(binary);
        assert_eq!(t.resource(f.id)["Condition"].as_str(), Some("HasCdn"), "{}", f.id);
    }

    let mut checked = 0;
    let mut check = |owner: &str, own: Option<&str>, body: &Value| {
        let mut guards = BTreeSet::new();
        if let Some(c) = own {
            implied_conditions(&t, c, &mut guards);
        }
        let mut refs = Vec::new();
        references(body, &guards, &mut refs);
        for (id, guards) in refs {
            if id.starts_with("AWS::") || t.section("Parameters").contains_key(id.as_str()) {
                continue;
            }
            let Some(needed) = condition_of(&t, &id) else { continue };
            let mut held = BTreeSet::new();
            for g in &guards {
                implied_conditions(&t, g, &mut held);
            }
            assert!(held.contains(&needed), "{owner} names {id} (Condition {needed}) outside that condition");
            checked += 1;
        }
    };
    for (id, r) in t.resources() {
        check(id, r.get("Condition").and_then(Value::as_str), r);
        // DependsOn names resources too (plain strings).
        for dep in list(&r["DependsOn"]).into_iter().filter_map(Value::as_str) {
            let reference = serde_yaml::from_str::<Value>(&format!("!Ref {dep}")).unwrap();
            check(id, r.get("Condition").and_then(Value::as_str), &reference);
        }
    }
    for (name, o) in t.section("Outputs") {
        let name = name.as_str().unwrap();
        check(name, o.get("Condition").and_then(Value::as_str), o);
    }
    assert!(checked > 50, "the references were not found ({checked})");

    for output in ["CdnUrl", "CdnDistributionId", "UrlKeysSecretArn", "UrlKeyValueStoreArn"] {
        let o = &t.section("Outputs")[output];
        assert_eq!(o["Condition"].as_str(), Some("HasCdn"), "output {output}");
    }
    // api-process knows the CDN only with one.
    let process = t.function("api-process");
    let on = t.environment(&process);
    assert_eq!(on["IMGFN_CDN_URL"], format!("https://{DISTRIBUTION_DOMAIN}"));
    assert!(on["IMGFN_URL_KEYS_SECRET"].starts_with("arn:aws:secretsmanager:"));
    let off_env = off.environment(&process);
    assert_eq!((off_env["IMGFN_CDN_URL"].as_str(), off_env["IMGFN_URL_KEYS_SECRET"].as_str()), ("", ""));
}

fn distribution(t: &Template) -> &Value {
    let mut found = t.of_type("AWS::CloudFront::Distribution");
    let (_, d) = found.next().expect("no distribution");
    assert!(found.next().is_none(), "one distribution");
    &d["Properties"]["DistributionConfig"]
}

/// The logical id behind `!Ref X`, `!GetAtt X.Attr`.
fn target(v: &Value) -> &str {
    let (_, arg) = intrinsic(v).unwrap_or_else(|| panic!("not a Ref or GetAtt: {v:?}"));
    match arg {
        Value::String(s) => s.split('.').next().unwrap(),
        other => other[0].as_str().unwrap(),
    }
}

fn ints(v: &Value) -> BTreeSet<u64> {
    list(v).into_iter().map(|c| c.as_u64().unwrap()).collect()
}

/// The render function's URL takes IAM-signed requests only, and exactly two permissions admit
/// CloudFront, each for this distribution only; nothing anywhere opens a function URL.
#[test]
fn the_render_function_url_admits_only_the_distribution() {
    let t = load();
    let render = t.function("render");
    assert_eq!(render.props["FunctionUrlConfig"]["AuthType"].as_str(), Some("AWS_IAM"));
    let distribution_arn = format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION_ID}");
    let mut actions = BTreeSet::new();
    for (id, p) in t.of_type("AWS::Lambda::Permission") {
        let p = &p["Properties"];
        assert_ne!(p["Principal"].as_str(), Some("*"), "{id}: a permission for anyone");
        assert_ne!(p["FunctionUrlAuthType"].as_str(), Some("NONE"), "{id}: an open function URL");
        if target(&p["FunctionName"]) != render.id {
            continue;
        }
        assert_eq!(p["Principal"].as_str(), Some("cloudfront.amazonaws.com"), "{id}");
        assert_eq!(t.resolve(&p["SourceArn"]), Some(distribution_arn.clone()), "{id}");
        let action = p["Action"].as_str().unwrap();
        match action {
            "lambda:InvokeFunctionUrl" => {
                assert_eq!(p["FunctionUrlAuthType"].as_str(), Some("AWS_IAM"), "{id}")
            }
            "lambda:InvokeFunction" => assert_eq!(p["InvokedViaFunctionUrl"].as_bool(), Some(true), "{id}"),
            other => panic!("{id}: {other}"),
        }
        assert!(actions.insert(action.to_owned()), "{id}: {action} twice");
    }
    assert_eq!(actions.len(), 2, "both grants of origin access control to a function URL: {actions:?}");
    for f in t.functions().into_iter().filter(|f| f.binary != "render") {
        assert!(f.props.get("FunctionUrlConfig").is_none(), "{}: a function URL", f.id);
    }
    // Its concurrency is reserved by default.
    let default = t.resolve(&t.section("Parameters")["RenderReservedConcurrency"]["Default"]).unwrap();
    assert!(default.parse::<u32>().unwrap() > 0);
    assert_eq!(t.resolve(&render.props["ReservedConcurrentExecutions"]), Some(default));
}

/// Both origins are reached through origin access control (SigV4, always signed): the output
/// bucket as an S3 origin, the render function's URL as a Lambda origin; `/v1/*` goes to S3
/// first and fails over to the renderer on exactly 403 and 404.
#[test]
fn both_origins_are_behind_origin_access_control_and_s3_comes_first() {
    let t = load();
    let d = distribution(&t);
    let origins = list(&d["Origins"]);
    assert_eq!(origins.len(), 2);
    let mut kinds = BTreeMap::new();
    for o in &origins {
        let id = o["Id"].as_str().unwrap();
        let oac = t.resource(target(&o["OriginAccessControlId"]));
        assert_eq!(oac["Type"].as_str(), Some("AWS::CloudFront::OriginAccessControl"), "{id}");
        let config = &oac["Properties"]["OriginAccessControlConfig"];
        assert_eq!(config["SigningBehavior"].as_str(), Some("always"), "{id}");
        assert_eq!(config["SigningProtocol"].as_str(), Some("sigv4"), "{id}");
        let kind = config["OriginAccessControlOriginType"].as_str().unwrap();
        match kind {
            "s3" => {
                assert!(format!("{:?}", o["DomainName"]).contains("OutputBucket.RegionalDomainName"), "{id}");
                // OAC, not the legacy origin access identity.
                assert_eq!(o["S3OriginConfig"]["OriginAccessIdentity"].as_str(), Some(""), "{id}");
            }
            "lambda" => {
                assert!(format!("{:?}", o["DomainName"]).contains("RenderFunctionUrl.FunctionUrl"), "{id}");
                assert_eq!(
                    o["CustomOriginConfig"]["OriginProtocolPolicy"].as_str(),
                    Some("https-only"),
                    "{id}"
                );
            }
            other => panic!("{id}: origin type {other}"),
        }
        kinds.insert(id.to_owned(), kind.to_owned());
    }
    assert_eq!(kinds.values().cloned().collect::<BTreeSet<_>>(), set(["s3".into(), "lambda".into()]));

    let groups = list(&d["OriginGroups"]["Items"]);
    assert_eq!(d["OriginGroups"]["Quantity"].as_u64(), Some(groups.len() as u64));
    assert_eq!(groups.len(), 1);
    let g = groups[0];
    let codes = &g["FailoverCriteria"]["StatusCodes"];
    assert_eq!(ints(&codes["Items"]), [403, 404].into_iter().collect());
    assert_eq!(codes["Quantity"].as_u64(), Some(2));
    let members: Vec<&str> =
        list(&g["Members"]["Items"]).into_iter().map(|m| m["OriginId"].as_str().unwrap()).collect();
    assert_eq!(g["Members"]["Quantity"].as_u64(), Some(2));
    let kinds_in_order: Vec<&str> = members.iter().map(|m| kinds[*m].as_str()).collect();
    assert_eq!(kinds_in_order, ["s3", "lambda"], "S3 first, the renderer on a miss");

    let behaviors: Vec<&Value> =
        std::iter::once(&d["DefaultCacheBehavior"]).chain(list(&d["CacheBehaviors"])).collect();
    let renditions = behaviors
        .iter()
        .find(|b| b["PathPattern"].as_str() == Some("/v1/*"))
        .expect("no behaviour for /v1/*");
    assert_eq!(renditions["TargetOriginId"].as_str(), g["Id"].as_str());
    // Only GET and HEAD reach the renderer, or anything: CloudFront allows origin groups on
    // GET/HEAD(/OPTIONS) behaviours only, and nothing here accepts a body.
    for b in &behaviors {
        let methods: BTreeSet<&str> =
            list(&b["AllowedMethods"]).into_iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(methods, ["GET", "HEAD"].into_iter().collect(), "{b:?}");
        assert_eq!(b["ViewerProtocolPolicy"].as_str(), Some("redirect-to-https"), "{b:?}");
    }
}

/// No 4xx or 5xx is cached at the edge (Serverless Image Handler cached 5xx for 10 minutes),
/// and no error is swapped for a page.
#[test]
fn errors_are_never_cached_at_the_edge() {
    let t = load();
    let d = distribution(&t);
    let mut ttls = BTreeMap::new();
    for e in list(&d["CustomErrorResponses"]) {
        let code = e["ErrorCode"].as_u64().unwrap();
        assert!(e.get("ResponsePagePath").is_none() && e.get("ResponseCode").is_none(), "{code}: replaced");
        assert!(ttls.insert(code, e["ErrorCachingMinTTL"].as_u64()).is_none(), "{code} twice");
    }
    for code in [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504] {
        assert_eq!(ttls.get(&code), Some(&Some(0)), "error {code} must have ErrorCachingMinTTL 0");
    }
    assert!(ttls.values().all(|ttl| *ttl == Some(0)), "{ttls:?}");
}

/// The cache key is the URI: no query string, header or cookie (the viewer-request function
/// has folded the normal form and the format into it); the origins get Accept and the viewer's
/// URL, which the render function checks again; every behaviour runs the viewer-request
/// function and uses these policies.
#[test]
fn the_cache_key_is_the_uri_and_every_request_is_checked_at_the_edge() {
    let t = load();
    let d = distribution(&t);
    let behaviors: Vec<&Value> =
        std::iter::once(&d["DefaultCacheBehavior"]).chain(list(&d["CacheBehaviors"])).collect();
    assert!(behaviors.len() >= 2);
    for b in behaviors {
        let cache = &t.resource(target(&b["CachePolicyId"]))["Properties"]["CachePolicyConfig"];
        let key = &cache["ParametersInCacheKeyAndForwardedToOrigin"];
        assert_eq!(key["QueryStringsConfig"]["QueryStringBehavior"].as_str(), Some("none"));
        assert_eq!(key["HeadersConfig"]["HeaderBehavior"].as_str(), Some("none"));
        assert_eq!(key["CookiesConfig"]["CookieBehavior"].as_str(), Some("none"));
        assert_eq!(key["EnableAcceptEncodingGzip"].as_bool(), Some(false));
        assert_eq!(key["EnableAcceptEncodingBrotli"].as_bool(), Some(false));

        let origin =
            &t.resource(target(&b["OriginRequestPolicyId"]))["Properties"]["OriginRequestPolicyConfig"];
        assert_eq!(origin["QueryStringsConfig"]["QueryStringBehavior"].as_str(), Some("none"));
        assert_eq!(origin["CookiesConfig"]["CookieBehavior"].as_str(), Some("none"));
        assert_eq!(origin["HeadersConfig"]["HeaderBehavior"].as_str(), Some("whitelist"));
        let headers: BTreeSet<String> = list(&origin["HeadersConfig"]["Headers"])
            .into_iter()
            .map(|h| h.as_str().unwrap().to_ascii_lowercase())
            .collect();
        let expected = set([imgfn_lambda::api::render::REQUEST_HEADER.to_owned(), "accept".to_owned()]);
        assert_eq!(headers, expected, "never Host: a function URL refuses a foreign Host");

        let functions = list(&b["FunctionAssociations"]);
        assert_eq!(functions.len(), 1, "{b:?}");
        assert_eq!(functions[0]["EventType"].as_str(), Some("viewer-request"));
        let f = t.resource(target(&functions[0]["FunctionARN"]));
        assert_eq!(f["Type"].as_str(), Some("AWS::CloudFront::Function"));
        assert!(b.get("ForwardedValues").is_none() && b.get("LambdaFunctionAssociations").is_none());
    }
}

/// The distribution reads only stored renditions (`r/`), `/process`'s outputs and the trigger
/// outputs, for itself only (SourceArn); it may not list the bucket, and it gets nothing of the
/// source bucket. The buckets stay private.
#[test]
fn the_cdn_reads_only_renditions_and_outputs() {
    let t = load();
    let out = t.resolve(&t.resource("OutputBucket")["Properties"]["BucketName"]).unwrap();
    let distribution_arn = format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION_ID}");
    let mut granted = BTreeSet::new();
    for (owner, s) in t.statements() {
        if format!("{:?}", s["Principal"]).contains("cloudfront.amazonaws.com") {
            assert_eq!(owner, "OutputBucketPolicy", "{owner} grants CloudFront something");
            assert_eq!(s["Effect"].as_str(), Some("Allow"));
            assert_eq!(
                list(&s["Action"]).into_iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>(),
                ["s3:GetObject"]
            );
            let source = &s["Condition"]["StringEquals"]["AWS:SourceArn"];
            assert_eq!(
                t.resolve(source),
                Some(distribution_arn.clone()),
                "{owner}: for this distribution only"
            );
            granted.extend(list(&s["Resource"]).into_iter().map(|r| t.resolve(r).unwrap()));
        }
    }
    let mut expected: BTreeSet<String> =
        ["r/", "processed/"].into_iter().map(|p| s3_arn(&out, &format!("/{p}*"))).collect();
    expected.extend(ops::triggers().map(|op| s3_arn(&out, &format!("/{}/*", op.name))));
    assert_eq!(granted, expected);
    for bucket in ["SourceBucket", "OutputBucket"] {
        let block = &t.resource(bucket)["Properties"]["PublicAccessBlockConfiguration"];
        for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
            assert_eq!(block[flag].as_bool(), Some(true), "{bucket}: {flag}");
        }
    }
}

/// The delivery functions may do their job and nothing else: render reads the rendition
/// prefixes' sources (and assets) and stores under `r/`; refresh deletes under `r/` and
/// invalidates this distribution.
#[test]
fn delivery_functions_have_least_privilege() {
    let t = load();
    let (_, source) = t.source_bucket();
    let src = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    let out = t.resolve(&t.resource("OutputBucket")["Properties"]["BucketName"]).unwrap();
    let secret = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:UrlKeysSecret");
    let render = t.function("render");
    let prefixes = imgfn_lambda::api::ApiConfig::from_lookup(|k| t.environment(&render).get(k).cloned())
        .unwrap()
        .rendition_prefixes;
    let mut reads: BTreeSet<String> = prefixes.iter().map(|p| s3_arn(&src, &format!("/{p}*"))).collect();
    reads.insert(s3_arn(&src, "/assets/*"));
    let logs = log_group_arn("render");
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("logs:CreateLogStream", set([logs.clone()])),
        ("logs:PutLogEvents", set([logs])),
        ("s3:GetObject", reads),
        ("s3:ListBucket", set([s3_arn(&src, "")])),
        ("s3:PutObject", set([s3_arn(&out, "/r/*")])),
        ("secretsmanager:GetSecretValue", set([secret.clone()])),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_owned(), r))
    .collect();
    assert_eq!(t.grants(&render), expected, "render");

    let refresh = t.function("refresh");
    let logs = log_group_arn("refresh");
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("logs:CreateLogStream", set([logs.clone()])),
        ("logs:PutLogEvents", set([logs])),
        ("s3:ListBucket", set([s3_arn(&out, "")])),
        ("s3:DeleteObject", set([s3_arn(&out, "/r/*")])),
        (
            "cloudfront:CreateInvalidation",
            set([format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION_ID}")]),
        ),
        ("sqs:SendMessage", set([format!("arn:aws:sqs:{REGION}:{ACCOUNT}:DeadLetterQueue")])),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_owned(), r))
    .collect();
    assert_eq!(t.grants(&refresh), expected, "refresh");
    assert_eq!(t.environment(&refresh)["IMGFN_CDN_DISTRIBUTION_ID"], DISTRIBUTION_ID);
    // api-process may read the URL keys (to sign), with the CDN only.
    let (_, policy) = t
        .of_type("AWS::IAM::RolePolicy")
        .find(|(_, p)| {
            format!("{:?}", p["Properties"]["RoleName"]).contains(t.role_of(&t.function("api-process")))
        })
        .expect("no URL keys policy for api-process");
    assert_eq!(policy["Condition"].as_str(), Some("HasCdn"));
}

/// A source under a rendition prefix written or deleted reaches the refresh function: the
/// source bucket sends its events to EventBridge (with the CDN), the rule picks Object Created
/// and Object Deleted of that bucket under exactly the prefixes the functions render from, and
/// what fails lands in the dead-letter queue.
#[test]
fn the_refresh_rule_watches_the_rendition_prefixes() {
    let t = load();
    let (_, source) = t.source_bucket();
    let src = t.resolve(&source["Properties"]["BucketName"]).unwrap();
    let eventbridge = &source["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"];
    let (f, arg) = intrinsic(eventbridge).expect("EventBridgeConfiguration: !If [HasCdn, ...]");
    assert_eq!((f.as_str(), arg[0].as_str()), ("If", Some("HasCdn")));
    assert_eq!(arg[1]["EventBridgeEnabled"].as_bool(), Some(true));

    let refresh = t.function("refresh");
    let events = refresh.props["Events"].as_mapping().unwrap();
    assert_eq!(events.len(), 1);
    let rule = events.values().next().unwrap();
    assert_eq!(rule["Type"].as_str(), Some("EventBridgeRule"));
    let pattern = &rule["Properties"]["Pattern"];
    assert_eq!(
        list(&pattern["source"]).into_iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>(),
        ["aws.s3"]
    );
    let kinds: BTreeSet<&str> =
        list(&pattern["detail-type"]).into_iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(kinds, ["Object Created", "Object Deleted"].into_iter().collect());
    let buckets: Vec<String> =
        list(&pattern["detail"]["bucket"]["name"]).into_iter().map(|v| t.resolve(v).unwrap()).collect();
    assert_eq!(buckets, [src]);
    let watched: Vec<String> = list(&pattern["detail"]["object"]["key"])
        .into_iter()
        .map(|k| k["prefix"].as_str().unwrap().to_owned())
        .collect();
    let config =
        imgfn_lambda::api::ApiConfig::from_lookup(|k| t.environment(&refresh).get(k).cloned()).unwrap();
    assert_eq!(watched, config.rendition_prefixes, "the rule watches what the functions render from");
    let render = t.function("render");
    let render_config =
        imgfn_lambda::api::ApiConfig::from_lookup(|k| t.environment(&render).get(k).cloned()).unwrap();
    assert_eq!(render_config.rendition_prefixes, config.rendition_prefixes);

    let dlq = get_att_arn(&rule["Properties"]["DeadLetterConfig"]["Arn"]);
    assert_eq!(dlq, Some("DeadLetterQueue"), "undeliverable events");
    let invoke = &refresh.props["EventInvokeConfig"];
    assert_eq!(invoke["MaximumRetryAttempts"].as_u64(), Some(2));
    assert_eq!(
        get_att_arn(&invoke["DestinationConfig"]["OnFailure"]["Destination"]),
        Some("DeadLetterQueue")
    );
    // EventBridge may put the events it could not deliver into the queue, from this rule only.
    let allowed = t.statements().into_iter().any(|(owner, s)| {
        owner == "DeadLetterQueuePolicy"
            && s["Principal"]["Service"].as_str() == Some("events.amazonaws.com")
            && get_att_arn(&s["Condition"]["ArnEquals"]["aws:SourceArn"])
                == Some(&format!("{}{}", refresh.id, "SourceChanged"))
    });
    assert!(allowed, "the queue policy lets the refresh rule deliver dead letters");
}

/// The WAF rate limit is off by default; asked for, it is attached in us-east-1, and anywhere
/// else the deploy stops with a message instead of leaving it out.
#[test]
fn the_waf_rate_limit_is_optional_and_only_in_us_east_1() {
    let t = load();
    assert_eq!(t.condition("HasCdnWaf"), Some(false), "no WAF by default");
    let mut asked = load();
    asked.given.insert("CdnRateLimit".into(), "2000".into());
    assert_eq!(asked.condition("HasCdnWaf"), Some(true));
    let (_, acl) = t.of_type("AWS::WAFv2::WebACL").next().expect("no web ACL");
    assert_eq!(acl["Condition"].as_str(), Some("HasCdnWaf"));
    assert_eq!(acl["Properties"]["Scope"].as_str(), Some("CLOUDFRONT"));
    let rate = &list(&acl["Properties"]["Rules"])[0]["Statement"]["RateBasedStatement"];
    assert_eq!(target(&rate["Limit"]), "CdnRateLimit");
    assert_eq!(rate["AggregateKeyType"].as_str(), Some("IP"));
    let (_, attach) = intrinsic(&distribution(&t)["WebACLId"]).unwrap();
    assert_eq!(attach[0].as_str(), Some("HasCdnWaf"));

    let mut elsewhere = load();
    elsewhere.given.insert("CdnRateLimit".into(), "2000".into());
    elsewhere.given.insert("AWS::Region".into(), "eu-west-1".into());
    assert_eq!(elsewhere.condition("HasCdnWaf"), Some(false));
    let rule = &t.section("Rules")["CdnRateLimitNeedsUsEast1"];
    let applies = |t: &Template| t.evaluate(&rule["RuleCondition"]).unwrap();
    let holds = |t: &Template| list(&rule["Assertions"]).iter().all(|a| t.evaluate(&a["Assert"]).unwrap());
    assert!(!applies(&t), "no rate limit: the rule does not apply");
    assert!(applies(&asked) && holds(&asked), "us-east-1 deploys it");
    assert!(applies(&elsewhere) && !holds(&elsewhere), "elsewhere the deploy stops");
}
