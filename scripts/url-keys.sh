#!/usr/bin/env bash
# Copies a deployed stack's URL keys from their Secrets Manager secret (the source of truth,
# read by the render function and api-process) into the CloudFront key value store, key
# `url-keys`, which the CDN's viewer-request function reads (docs/deploy.md, "Deploying the
# CDN"). Run it once after the first deploy (until then the CDN refuses every signed URL with
# 403) and again after every change of the secret (a key rotation).
#
#   scripts/url-keys.sh <stack-name>
#
# The secret holds "newest,previous": one or two keys, each at least 32 characters. A list the
# edge would refuse (no key, three keys, a short key) is not copied. The keys never appear on a
# command line or in the output: they go to the AWS CLI in a private temporary file.
#
# Needs the AWS CLI (v2; v1 needs `pip install 'botocore[crt]'`, as the key value store API is
# signed with SigV4A) and credentials allowed cloudformation:DescribeStacks,
# secretsmanager:GetSecretValue on the secret, and cloudfront-keyvaluestore:DescribeKeyValueStore
# and cloudfront-keyvaluestore:PutKey on the store. The region is the CLI's (AWS_REGION,
# AWS_DEFAULT_REGION or the profile's): the stack's.
set -euo pipefail

KVS_KEY=url-keys
MIN_KEY_LEN=32
MAX_KEYS=2

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 <stack-name>" >&2
  exit 2
fi
stack="$1"
aws="${AWS_CLI:-aws}"

output() {
  local value
  value="$("$aws" cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text)"
  if [ -z "$value" ] || [ "$value" = None ]; then
    echo "stack $stack has no output $1: was it deployed with EnableCdn=true?" >&2
    exit 1
  fi
  printf '%s' "$value"
}

secret_arn="$(output UrlKeysSecretArn)"
kvs_arn="$(output UrlKeyValueStoreArn)"

keys="$("$aws" secretsmanager get-secret-value --secret-id "$secret_arn" \
  --query SecretString --output text)"

# The same rules as url_keys::parse (shared/imgfn-lambda/src/url_keys.rs): comma-separated,
# spaces around a key ignored, empty entries skipped, 1 to 2 keys, each >= 32 bytes.
count=0
IFS=',' read -r -a entries <<<"$keys"
for entry in "${entries[@]}"; do
  k="${entry#"${entry%%[![:space:]]*}"}"
  k="${k%"${k##*[![:space:]]}"}"
  [ -z "$k" ] && continue
  count=$((count + 1))
  if [ "$(printf '%s' "$k" | wc -c)" -lt "$MIN_KEY_LEN" ]; then
    echo "key $count of the secret is shorter than $MIN_KEY_LEN characters: not copied" >&2
    exit 1
  fi
done
if [ "$count" -eq 0 ] || [ "$count" -gt "$MAX_KEYS" ]; then
  echo "the secret holds $count keys; it must hold 1 or $MAX_KEYS (\"newest,previous\"): not copied" >&2
  exit 1
fi
case "$keys" in
  *[[:cntrl:]]* | *\"* | *\\*)
    echo "the secret holds a control character, \" or \\: not copied" >&2
    exit 1
    ;;
esac

etag="$("$aws" cloudfront-keyvaluestore describe-key-value-store --kvs-arn "$kvs_arn" \
  --query ETag --output text)"

umask 077
input="$(mktemp)"
trap 'rm -f "$input"' EXIT
printf '{"KvsARN": "%s", "Key": "%s", "Value": "%s", "IfMatch": "%s"}\n' \
  "$kvs_arn" "$KVS_KEY" "$keys" "$etag" >"$input"
"$aws" cloudfront-keyvaluestore put-key --cli-input-json "file://$input" --output text \
  --query ItemCount >/dev/null

echo "copied $count URL key(s) from $secret_arn to $kvs_arn (key $KVS_KEY)"
echo "CloudFront's edge locations see the new keys within seconds to a few minutes."
