#!/bin/sh
# deploy/publish.sh: publish dist/forensics-volume.img as the current
# forensics volume snapshot, in the security account.
#
#   deploy/publish.sh --region eu-west-1 \
#       --kms-key-id arn:aws:kms:eu-west-1:111122223333:key/mrk-... \
#       [--copy-to us-east-1,ap-southeast-2] [--share-with 444455556666,...] \
#       [--share-with-organization] [--image dist/forensics-volume.img] \
#       [--parameter-name /forensics-volume/snapshot-id] \
#       [--description TEXT] [--profile NAME] [--dry-run]
#
# --share-with-organization shares with every ACTIVE account of the
# organization (organizations:ListAccounts, from the management account or
# the Organizations delegated administrator), in batches of at most 500
# account IDs per ModifySnapshotAttribute call (the API's limit); EBS
# snapshots cannot be shared with an organization or OU as such. Run it again
# after accounts join (the security stack's re-share rule does it for you).
#
# 1. coldsnap uploads the image as an EBS snapshot encrypted with the key
#    (EBS direct APIs: no instance, no volume), and waits for it;
# 2. the snapshot is tagged, shared with the listed accounts, and the SSM
#    parameter the runbook reads is pointed at it;
# 3. for each --copy-to region: the snapshot is copied there, re-encrypted with
#    the same multi-Region key's replica, then tagged, shared and the
#    region's parameter updated likewise.
# --dry-run prints every call (lines starting with "+ ") and runs none; the
# IDs it would learn are shown as SNAPSHOT-<region>.
set -eu

say() { printf '%s\n' "$*"; }
die() {
    printf 'publish: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,29s/^# \{0,1\}//p' "$0"
    exit 0
}
# Account IDs per ModifySnapshotAttribute call (EC2 API reference: at most 500).
BATCH=500

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
IMAGE=$here/../dist/forensics-volume.img
REGION=''
KEY=''
COPY_TO=''
SHARE_WITH=''
PARAMETER=/forensics-volume/snapshot-id
DESCRIPTION=''
PROFILE=''
DRY_RUN=''
ORGANIZATION=''

while [ $# -gt 0 ]; do
    case $1 in
    --image | --region | --kms-key-id | --copy-to | --share-with | --parameter-name | --description | --profile)
        [ $# -ge 2 ] || die "$1 needs a value"
        case $1 in
        --image) IMAGE=$2 ;;
        --region) REGION=$2 ;;
        --kms-key-id) KEY=$2 ;;
        --copy-to) COPY_TO=$2 ;;
        --share-with) SHARE_WITH=$2 ;;
        --parameter-name) PARAMETER=$2 ;;
        --description) DESCRIPTION=$2 ;;
        --profile) PROFILE=$2 ;;
        esac
        shift 2
        ;;
    --dry-run)
        DRY_RUN=1
        shift
        ;;
    --share-with-organization)
        ORGANIZATION=1
        shift
        ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# matches VALUE ERE: VALUE matches the extended regular expression.
matches() { printf '%s\n' "$1" | grep -Eqx -e "$2"; }

REGION_RE='[a-z]{2}(-[a-z]+)+-[0-9]+'
[ -n "$REGION" ] || die "--region is required (the region to upload to)"
matches "$REGION" "$REGION_RE" || die "--region '$REGION' is not a region name"
[ -n "$KEY" ] || die "--kms-key-id is required: the security stack's KmsKeyArn output (a key ARN, not an alias)"
matches "$KEY" "arn:aws[a-z-]*:kms:$REGION:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})" ||
    die "--kms-key-id '$KEY' is not a KMS key ARN in $REGION (aliases cannot be used to share)"
COPIES=$(printf '%s' "$COPY_TO" | tr ',' ' ')
for r in $COPIES; do
    matches "$r" "$REGION_RE" || die "--copy-to: '$r' is not a region name"
    [ "$r" != "$REGION" ] || die "--copy-to: $r is the upload region"
done
if [ -n "$COPIES" ]; then
    case $KEY in
    *:key/mrk-*) ;;
    *) die "--copy-to needs a multi-Region key (key/mrk-...): each region uses its replica" ;;
    esac
fi
ACCOUNTS=$(printf '%s' "$SHARE_WITH" | tr ',' ' ')
for a in $ACCOUNTS; do
    matches "$a" '[0-9]{12}' || die "--share-with: '$a' is not a 12-digit account ID"
done
matches "$PARAMETER" '/forensics-volume(/[A-Za-z0-9_.-]{1,64}){1,4}' ||
    die "--parameter-name '$PARAMETER' is not under /forensics-volume/"
[ -z "$PROFILE" ] || matches "$PROFILE" '[A-Za-z0-9_.-]{1,64}' || die "--profile '$PROFILE' is not a profile name"
[ -f "$IMAGE" ] || die "no image at $IMAGE (run ./build.sh first, or pass --image)"
[ -s "$IMAGE" ] || die "$IMAGE is empty"

if [ -z "$DRY_RUN" ]; then
    command -v coldsnap >/dev/null 2>&1 ||
        die "coldsnap is not installed (cargo install --locked coldsnap; it uploads through the EBS direct APIs)"
    command -v aws >/dev/null 2>&1 ||
        die "the aws CLI is not installed (apt-get install awscli, or pip install awscli)"
fi

if command -v sha256sum >/dev/null 2>&1; then
    IMAGE_SHA=$(sha256sum "$IMAGE" | cut -d' ' -f1)
else
    IMAGE_SHA=unknown
fi
[ -n "$DESCRIPTION" ] || DESCRIPTION="forensics-volume image sha256:$IMAGE_SHA"
matches "$DESCRIPTION" "[A-Za-z0-9 ,.:;_/@#+=()-]{1,255}" || die "--description has characters EC2 or this script do not take"

# quote ARG: ARG as the shell would need it written.
quote() {
    case $1 in
    '' | *[!A-Za-z0-9_./:=,@+-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
    esac
}
show() {
    line='+'
    for arg in "$@"; do line="$line $(quote "$arg")"; done
    say "$line"
}
# run CMD...: show it, then run it (not in a dry run).
run() {
    show "$@"
    [ -n "$DRY_RUN" ] || "$@"
}
AWS_PROFILE_ARGS=''
[ -z "$PROFILE" ] || AWS_PROFILE_ARGS="--profile $PROFILE"

# share REGION SNAPSHOT: createVolumePermission for every account in
# $ACCOUNTS, at most $BATCH per call.
share() {
    # shellcheck disable=SC2086 # one word per account ID, each checked
    set -- "$1" "$2" $ACCOUNTS
    region=$1
    snapshot=$2
    shift 2
    while [ $# -gt 0 ]; do
        batch=''
        n=0
        while [ $# -gt 0 ] && [ "$n" -lt "$BATCH" ]; do
            batch="$batch $1"
            n=$((n + 1))
            shift
        done
        # shellcheck disable=SC2086 # AWS_PROFILE_ARGS is empty or two safe words; batch is checked IDs
        run aws $AWS_PROFILE_ARGS ec2 modify-snapshot-attribute --region "$region" --snapshot-id "$snapshot" \
            --attribute createVolumePermission --operation-type add --user-ids $batch
    done
}

# finish REGION SNAPSHOT: tag, share and point the region's parameter at it.
finish() {
    # shellcheck disable=SC2086 # AWS_PROFILE_ARGS is empty or two safe words
    run aws $AWS_PROFILE_ARGS ec2 create-tags --region "$1" --resources "$2" \
        --tags Key=Name,Value=forensics-volume "Key=forensics-volume:image-sha256,Value=$IMAGE_SHA"
    [ -z "$ACCOUNTS" ] || share "$1" "$2"
    # shellcheck disable=SC2086
    run aws $AWS_PROFILE_ARGS ssm put-parameter --region "$1" --name "$PARAMETER" --type String --overwrite \
        --value "$2" --tier Advanced
    SUMMARY="$SUMMARY
  $1: $2"
}

if [ -n "$ORGANIZATION" ]; then
    # shellcheck disable=SC2086
    set -- aws $AWS_PROFILE_ARGS organizations list-accounts --query "Accounts[?Status=='ACTIVE'].Id" --output text
    show "$@"
    if [ -n "$DRY_RUN" ]; then
        org=''
        [ -z "${FV_PUBLISH_DRY_RUN_ACCOUNTS:-}" ] || org=$FV_PUBLISH_DRY_RUN_ACCOUNTS
    else
        org=$("$@") || die "organizations list-accounts failed: run from the management account or the Organizations delegated administrator, or pass --share-with"
    fi
    self=$(printf '%s' "$KEY" | cut -d: -f5)
    for a in $org; do
        matches "$a" '[0-9]{12}' || die "organizations list-accounts printed '$a', not an account ID"
        # The key's (security) account owns the snapshot: no need to share with it.
        [ "$a" = "$self" ] && continue
        case " $ACCOUNTS " in *" $a "*) continue ;; esac
        ACCOUNTS="$ACCOUNTS $a"
    done
    # shellcheck disable=SC2086 # one word per checked account ID
    say "publish: sharing with $(printf '%s\n' $ACCOUNTS | grep -c .) account(s) of the organization and --share-with"
fi

SUMMARY=''
say "publish: uploading $IMAGE (sha256 $IMAGE_SHA) to $REGION, encrypted with $KEY"
# shellcheck disable=SC2086
set -- coldsnap --region "$REGION" $AWS_PROFILE_ARGS upload --kms-key-id "$KEY" \
    --description "$DESCRIPTION" --no-progress --wait "$IMAGE"
show "$@"
if [ -n "$DRY_RUN" ]; then
    SNAP=SNAPSHOT-$REGION
else
    out=$("$@") || die "coldsnap upload failed (see above); nothing was shared or published"
    SNAP=$(printf '%s\n' "$out" | tail -n 1)
    matches "$SNAP" 'snap-[0-9a-f]{8,17}' || die "coldsnap did not print a snapshot ID (got '$SNAP')"
fi
finish "$REGION" "$SNAP"

for r in $COPIES; do
    rkey=$(printf '%s' "$KEY" | sed "s/:kms:$REGION:/:kms:$r:/")
    say "publish: copying $SNAP to $r (key $rkey)"
    # shellcheck disable=SC2086
    set -- aws $AWS_PROFILE_ARGS ec2 copy-snapshot --region "$r" --source-region "$REGION" --source-snapshot-id "$SNAP" \
        --encrypted --kms-key-id "$rkey" --description "$DESCRIPTION" --query SnapshotId --output text
    show "$@"
    if [ -n "$DRY_RUN" ]; then
        copy=SNAPSHOT-$r
    else
        copy=$("$@") || die "copy-snapshot to $r failed; $SNAP in $REGION is published"
        matches "$copy" 'snap-[0-9a-f]{8,17}' || die "copy-snapshot printed '$copy', not a snapshot ID"
    fi
    # The CLI's waiter gives up after 10 minutes; a copy may take longer.
    tries=0
    # shellcheck disable=SC2086
    until run aws $AWS_PROFILE_ARGS ec2 wait snapshot-completed --region "$r" --snapshot-ids "$copy"; do
        tries=$((tries + 1))
        [ "$tries" -lt 12 ] || die "$copy in $r did not complete within 2 hours; finish by hand"
    done
    finish "$r" "$copy"
done

say "publish: done. Current forensics volume snapshot, parameter $PARAMETER:$SUMMARY"
[ -z "$DRY_RUN" ] || say "publish: DRY RUN: nothing was called"
