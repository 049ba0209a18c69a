#!/usr/bin/env bash
# Validate CloudFormation templates offline with @aws/cloudformation-validate.
# Installs the pinned validator (deploy/ecs/validate/package-lock.json) into
# .cache/cfn-validate on first use; later runs need no network.
#
# usage: deploy/ecs/validate-template.sh [TEMPLATE...]   (default: deploy/ecs/template.yaml)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${CFN_VALIDATE_CACHE:-$root/.cache/cfn-validate}"

if ! cmp -s "$here/validate/package-lock.json" "$cache/package-lock.json" ||
   [ ! -f "$cache/node_modules/@aws/cloudformation-validate/package.json" ]; then
    mkdir -p "$cache"
    cp "$here/validate/package.json" "$here/validate/package-lock.json" "$cache/"
    npm ci --prefix "$cache" --no-audit --no-fund --loglevel=error >&2
fi

if [ "$#" -eq 0 ]; then
    set -- "$here/template.yaml"
fi
CFN_VALIDATE_MODULES="$cache/node_modules" exec node "$here/validate/validate.js" "$@"
