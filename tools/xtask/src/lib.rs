//! What derives from the operation registry (`image_ops::ops::REGISTRY`), written into the files
//! that deploy, run and document imgfn, so that adding an operation is a change to the registry
//! and never to these files by hand:
//!
//! | file | derived part |
//! |---|---|
//! | `template.yaml` | each S3-triggered function (log group, function, invoke permission), its trigger notification, its `<Name>Params`/`<Name>Output` parameters, and the API functions' per-prefix grants |
//! | `samconfig.toml` | the functions' parameter overrides |
//! | `events/s3-<name>.json` | one sample S3 event per function (whole files) |
//! | `docs/openapi.yaml` | the operation and format enums |
//! | `README.md` | the operations table |
//!
//! In a file, a derived part sits between two marker lines, `>>> generated: <region>` and
//! `<<< generated: <region>`, in the file's comment syntax; everything outside them is written
//! by hand. `cargo xtask sync` rewrites the regions and files; `cargo xtask check` (and the test
//! `tests/stack-check/tests/registry.rs`) lists the ones that fell behind.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use image_ops::ops::{self, Kind, OpSpec};
use image_ops::OutputFormat;

/// A file as it is and as the registry says it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Relative to the repository root.
    pub path: PathBuf,
    pub current: Option<String>,
    /// `None`: the file should not exist (a sample event of an operation that is gone).
    pub expected: Option<String>,
}

impl Derived {
    pub fn is_stale(&self) -> bool {
        self.current != self.expected
    }
}

/// The repository root (this crate lives in `tools/xtask`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The generated regions of a file: `(region, content)`.
type Regions = Vec<(&'static str, String)>;

/// Every derived file under `root`, with its expected content.
pub fn derived(root: &Path) -> Result<Vec<Derived>, String> {
    let mut out = Vec::new();
    let regions: [(&str, &str, Regions); 4] = [
        (
            "template.yaml",
            "#",
            vec![
                ("trigger-parameters", template_parameters()),
                ("trigger-permissions", template_depends_on()),
                ("trigger-notifications", template_notifications()),
                ("source-expiry", template_expiry("Sources", "ExpireSources", "SourceRetentionDays")),
                ("output-expiry", template_expiry("Outputs", "ExpireOutputs", "OutputRetentionDays")),
                ("trigger-functions", template_functions()),
                ("upload-prefixes", prefix_grants(SOURCE_OBJECTS)),
                ("process-sources", prefix_grants(SOURCE_OBJECTS)),
                ("image-outputs", prefix_grants(OUTPUT_OBJECTS)),
            ],
        ),
        ("samconfig.toml", "#", vec![("trigger-parameters", samconfig_parameters())]),
        ("docs/openapi.yaml", "#", vec![("names", openapi_names())]),
        ("README.md", "<!--", vec![("operations", readme_operations())]),
    ];
    for (file, comment, replacements) in regions {
        let path = root.join(file);
        let current = fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let mut expected = current.clone();
        for (region, content) in &replacements {
            expected =
                replace_region(&expected, comment, region, content).map_err(|e| format!("{file}: {e}"))?;
        }
        out.push(Derived { path: file.into(), current: Some(current), expected: Some(expected) });
    }

    // One sample event per function; none for anything else.
    let mut events: Vec<PathBuf> = Vec::new();
    for op in ops::triggers() {
        let file = PathBuf::from(format!("events/s3-{}.json", op.name));
        let current = fs::read_to_string(root.join(&file)).ok();
        out.push(Derived { path: file.clone(), current, expected: Some(s3_event(op)) });
        events.push(file);
    }
    let dir = fs::read_dir(root.join("events")).map_err(|e| format!("events/: {e}"))?;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let file = PathBuf::from("events").join(&name);
        if name.starts_with("s3-") && name.ends_with(".json") && !events.contains(&file) {
            let current = fs::read_to_string(entry.path()).ok();
            out.push(Derived { path: file, current, expected: None });
        }
    }
    Ok(out)
}

/// Writes every stale derived file; returns the ones written (or removed).
pub fn sync(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut changed = Vec::new();
    for d in derived(root)?.into_iter().filter(Derived::is_stale) {
        let path = root.join(&d.path);
        match &d.expected {
            Some(text) => fs::write(&path, text).map_err(|e| format!("{}: {e}", d.path.display()))?,
            None => fs::remove_file(&path).map_err(|e| format!("{}: {e}", d.path.display()))?,
        }
        changed.push(d.path);
    }
    Ok(changed)
}

/// `text` with the lines between the markers of `region` replaced by `content`.
fn replace_region(text: &str, comment: &str, region: &str, content: &str) -> Result<String, String> {
    let begin = format!("{comment} >>> generated: {region}");
    let end = format!("{comment} <<< generated: {region}");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let find = |marker: &str, from: usize| {
        lines.iter().skip(from).position(|l| l.trim_start().starts_with(marker)).map(|i| i + from)
    };
    let start = find(&begin, 0).ok_or_else(|| format!("no `{begin}` line"))?;
    let stop = find(&end, start + 1).ok_or_else(|| format!("no `{end}` line after `{begin}`"))?;
    if find(&begin, start + 1).is_some() {
        return Err(format!("`{begin}` appears twice"));
    }
    let mut out: String = lines[..=start].concat();
    out.push_str(content);
    out.push_str(&lines[stop..].concat());
    Ok(out)
}

/// `round-corner` → `RoundCorner`: the prefix of the template's logical ids and parameters.
pub fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// A YAML single-quoted scalar (JSON params contain double quotes).
fn yaml_quoted(value: &str) -> String {
    if value.is_empty() {
        "\"\"".into()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// A TOML basic string holding `Key=value` in SAM's parameter-override syntax: a value with
/// quotes is wrapped in '...', an empty one is written "".
fn samconfig_override(key: &str, value: &str) -> String {
    let sam = if value.is_empty() { "\"\"".to_owned() } else { format!("'{value}'") };
    let line = format!("{key}={sam}");
    format!("\"{}\"", line.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether the function gets an `IMGFN_OUTPUT` parameter (an operation whose params are output
/// params has none).
fn has_output_parameter(op: &OpSpec) -> bool {
    op.kind == Kind::Pixels
}

fn template_parameters() -> String {
    let mut out = String::new();
    for op in ops::triggers() {
        let (Some(t), name) = (op.trigger, camel(op.name)) else { continue };
        let _ = write!(
            out,
            "  {name}Params:\n    Type: String\n    Default: {}\n    Description: IMGFN_PARAMS of {} ({}).\n",
            yaml_quoted(t.params),
            op.name,
            match op.kind {
                Kind::Pixels => "its params as a JSON object; README, Operations",
                Kind::Output => "its output params as a JSON object",
            }
        );
        if has_output_parameter(op) {
            let _ = write!(
                out,
                "  {name}Output:\n    Type: String\n    Default: {}\n    Description: IMGFN_OUTPUT of {} (output params as a JSON object; empty = the input's format).\n",
                yaml_quoted(t.output),
                op.name
            );
        }
    }
    out
}

fn template_depends_on() -> String {
    ops::triggers().map(|op| format!("      - {}InvokePermission\n", camel(op.name))).collect()
}

fn template_notifications() -> String {
    let mut out = String::new();
    for op in ops::triggers() {
        let _ = write!(
            out,
            "          - Event: s3:ObjectCreated:*\n            Filter: {{S3Key: {{Rules: [{{Name: prefix, Value: {}/}}]}}}}\n            Function: !GetAtt {}Function.Arn\n",
            op.name,
            camel(op.name)
        );
    }
    out
}

/// Lifecycle rules expiring each trigger prefix after `days` (0 = kept: the rule is disabled).
fn template_expiry(what: &str, condition: &str, days: &str) -> String {
    let mut out = String::new();
    for op in ops::triggers() {
        let _ = write!(
            out,
            "          - Id: Expire{id}{what}\n            Status: !If [{condition}, Enabled, Disabled]\n            Prefix: {n}/\n            ExpirationInDays: !If [{condition}, !Ref {days}, 1]\n",
            id = camel(op.name),
            n = op.name,
        );
    }
    out
}

fn template_functions() -> String {
    let mut out = String::new();
    for op in ops::triggers() {
        let (n, id) = (op.name, camel(op.name));
        let output = if has_output_parameter(op) {
            format!("\n          IMGFN_OUTPUT: !Ref {id}Output")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"  {id}LogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /aws/lambda/${{AWS::StackName}}/{n}
      RetentionInDays: !Ref LogRetentionDays

  {id}Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: {n}
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: OwnLogGroup
                Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !GetAtt {id}LogGroup.Arn
              - Sid: ReadSource
                Effect: Allow
                Action: s3:GetObject
                Resource:
                  - !Sub {SOURCE_OBJECTS}/{n}/*
                  - !Sub {SOURCE_OBJECTS}/assets/*
              - Sid: NotFoundNotForbidden
                Effect: Allow
                Action: s3:ListBucket
                Resource: !Sub {SOURCE_OBJECTS}
              - Sid: WriteOutput
                Effect: Allow
                Action: s3:PutObject
                Resource:
                  - !Sub ${{OutputBucket.Arn}}/{n}/*
                  - !Sub ${{OutputBucket.Arn}}/errors/{n}/*
              - Sid: DeleteStaleErrorRecord
                Effect: Allow
                Action: s3:DeleteObject
                Resource: !Sub ${{OutputBucket.Arn}}/errors/{n}/*
              - Sid: FailedEventsToTheDeadLetterQueue
                Effect: Allow
                Action: sqs:SendMessage
                Resource: !GetAtt DeadLetterQueue.Arn

  {id}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: {n}
    Properties:
      Description: imgfn {n} (S3 trigger on {n}/)
      CodeUri: ./
      MemorySize: !Ref S3FunctionMemorySize
      Timeout: !Ref S3FunctionTimeout
      ReservedConcurrentExecutions: !If [HasReservedConcurrency, !Ref ReservedConcurrency, !Ref AWS::NoValue]
      Role: !GetAtt {id}Role.Arn
      LoggingConfig:
        LogGroup: !Ref {id}LogGroup
      Environment:
        Variables:
          IMGFN_TRIGGER_PREFIX: {n}/
          IMGFN_PARAMS: !Ref {id}Params{output}
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        MaximumEventAgeInSeconds: 21600
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt DeadLetterQueue.Arn

  {id}InvokePermission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref {id}Function
      Principal: s3.amazonaws.com
      SourceAccount: !Ref AWS::AccountId
      SourceArn: !Sub {SOURCE_OBJECTS}

  {id}FailuresAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: >-
        imgfn {n}: an invocation failed (it is retried, then lands in the dead-letter queue),
        was throttled, or its failed event could not be delivered to the dead-letter queue.
        Bad uploads are not failures: they write error records.
      Metrics:
        - Id: failures
          Label: errors + throttles + failed deliveries to the dead-letter queue
          Expression: FILL(errors, 0) + FILL(throttles, 0) + FILL(deliveries, 0)
          ReturnData: true
        - Id: errors
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Errors
              Dimensions: [{{Name: FunctionName, Value: !Ref {id}Function}}]
            Period: 300
            Stat: Sum
          ReturnData: false
        - Id: throttles
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Throttles
              Dimensions: [{{Name: FunctionName, Value: !Ref {id}Function}}]
            Period: 300
            Stat: Sum
          ReturnData: false
        - Id: deliveries
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: DestinationDeliveryFailures
              Dimensions: [{{Name: FunctionName, Value: !Ref {id}Function}}]
            Period: 300
            Stat: Sum
          ReturnData: false
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]

  {id}ConcurrencyAlarm:
    Type: AWS::CloudWatch::Alarm
    Condition: HasReservedConcurrency
    Properties:
      AlarmDescription: >-
        imgfn {n} runs at 80% or more of its reserved concurrency; beyond it, invocations are
        throttled (S3 events are retried for up to six hours).
      Metrics:
        - Id: share
          Label: percent of the reserved concurrency in use
          Expression: !Sub 100 * FILL(running, 0) / ${{ReservedConcurrency}}
          ReturnData: true
        - Id: running
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: ConcurrentExecutions
              Dimensions: [{{Name: FunctionName, Value: !Ref {id}Function}}]
            Period: 60
            Stat: Maximum
          ReturnData: false
      EvaluationPeriods: 5
      DatapointsToAlarm: 3
      Threshold: 80
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]

"#
        );
    }
    out
}

/// Objects of the source bucket, as a `!Sub` ARN.
const SOURCE_OBJECTS: &str =
    "arn:${AWS::Partition}:s3:::${AWS::StackName}-${AWS::AccountId}-${AWS::Region}-source";
/// Objects of the output bucket, as a `!Sub` ARN.
const OUTPUT_OBJECTS: &str = "${OutputBucket.Arn}";

/// An API function's grants on every trigger prefix of `bucket` (signing uploads to it,
/// reading sources from it, reading its outputs).
fn prefix_grants(bucket: &str) -> String {
    ops::triggers().map(|op| format!("                  - !Sub {bucket}/{}/*\n", op.name)).collect()
}

fn samconfig_parameters() -> String {
    let mut out = String::new();
    for op in ops::triggers() {
        let (Some(t), name) = (op.trigger, camel(op.name)) else { continue };
        let _ = writeln!(out, "  {},", samconfig_override(&format!("{name}Params"), t.params));
        if has_output_parameter(op) {
            let _ = writeln!(out, "  {},", samconfig_override(&format!("{name}Output"), t.output));
        }
    }
    out
}

/// `[a, b, c]` in YAML flow style.
fn flow(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

fn openapi_names() -> String {
    let all_names = |specs: &mut dyn Iterator<Item = &'static OpSpec>| {
        flow(specs.flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied())).map(str::to_owned))
    };
    let pixel_ops = all_names(&mut ops::REGISTRY.iter().copied().filter(|s| s.kind == Kind::Pixels));
    let trigger_ops = all_names(&mut ops::triggers());
    let formats = flow(OutputFormat::ALL.iter().map(|f| f.name().to_owned()));
    let mut format_names: Vec<String> = OutputFormat::ALL.iter().map(|f| f.name().to_owned()).collect();
    format_names.insert(1, "jpg".into());
    format!(
        r#"    OpName:
      type: string
      description: An operation of a pipeline, by its name or an alias (README, Operations).
      enum: {pixel_ops}
    FunctionName:
      type: string
      description: An S3-triggered function, by its name or an alias.
      enum: {trigger_ops}
    Format:
      type: string
      enum: {formats}
    FormatName:
      type: string
      description: An output format (`jpg` is `jpeg`).
      enum: {}
"#,
        flow(format_names)
    )
}

/// A Markdown table cell: pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn readme_operations() -> String {
    let mut out = String::from(
        "| operation | what it does | params (defaults) | S3 trigger (default params) |\n|---|---|---|---|\n",
    );
    for op in ops::REGISTRY {
        let aliases = if op.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also {})", op.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "))
        };
        let trigger = match op.trigger {
            Some(t) if t.output.is_empty() => format!("`{}/` (`{}`)", op.name, t.params),
            Some(t) => format!("`{}/` (`{}`, output `{}`)", op.name, t.params, t.output),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "| `{}`{aliases} | {} | {} | {} |",
            op.name,
            cell(op.summary),
            cell(op.params),
            cell(&trigger)
        );
    }
    out
}

/// The sample S3 notification event of a function: an object created under its prefix.
fn s3_event(op: &OpSpec) -> String {
    let n = op.name;
    format!(
        r#"{{
  "Records": [
    {{
      "eventVersion": "2.1",
      "eventSource": "aws:s3",
      "awsRegion": "us-east-1",
      "eventTime": "2026-11-24T12:00:00.000Z",
      "eventName": "ObjectCreated:Put",
      "userIdentity": {{ "principalId": "AWS:AIDAEXAMPLEUSER" }},
      "requestParameters": {{ "sourceIPAddress": "127.0.0.1" }},
      "responseElements": {{
        "x-amz-request-id": "C3D13FE58DE4C810",
        "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
      }},
      "s3": {{
        "s3SchemaVersion": "1.0",
        "configurationId": "imgfn-{n}",
        "bucket": {{
          "name": "imgfn-source",
          "ownerIdentity": {{ "principalId": "A3NL1KOZZKExample" }},
          "arn": "arn:aws:s3:::imgfn-source"
        }},
        "object": {{
          "key": "{n}/sample.jpg",
          "size": 1024,
          "eTag": "d41d8cd98f00b204e9800998ecf8427e",
          "sequencer": "0055AED6DCD90281E5"
        }}
      }}
    }}
  ]
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_replaced_between_their_markers_only() {
        let text = "a\n# >>> generated: x\nold\n# <<< generated: x\nb\n";
        assert_eq!(
            replace_region(text, "#", "x", "new\n").as_deref(),
            Ok("a\n# >>> generated: x\nnew\n# <<< generated: x\nb\n")
        );
        assert!(replace_region(text, "#", "y", "").is_err());
        assert!(replace_region("# >>> generated: x\n", "#", "x", "").is_err());
    }

    #[test]
    fn names_become_template_ids() {
        assert_eq!(camel("round-corner"), "RoundCorner");
        assert_eq!(camel("qr-overlay"), "QrOverlay");
        assert_eq!(camel("thumbnail"), "Thumbnail");
    }

    #[test]
    fn samconfig_quoting_follows_sam() {
        assert_eq!(samconfig_override("A", ""), r#""A=\"\"""#);
        assert_eq!(samconfig_override("A", r#"{"w":1}"#), r#""A='{\"w\":1}'""#);
    }
}
