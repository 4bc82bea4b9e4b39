#!/bin/sh
# Lines of hand-written Zitadel plumbing: the non-spec .ts files of src/zitadel (the client) and dev-idp (the
# stand-in), as committed at a revision (default HEAD). `npm run plumbing:lines [-- <rev>]`; the figure before
# issue 16 is `npm run plumbing:lines -- edb7b75~1`.
#
# `npm run plumbing:lines -- --equal-features` prints the figure before issue 16 at today's features: issues 19
# (organizations) and 20 (account self-service) were built on the hand-written client (their branches end at
# ab20fe5 and e85b944, both forked from edb7b75~1) and only later ported to the new one, so the hand-written
# client with both of them is those two branch heads merged. The one conflict (zitadel.types.ts, each side
# adding its own types at the same place) is resolved by keeping both sides, so the count skips the markers.
# Needs git 2.38+ (merge-tree --write-tree).
count_tree() {
  rev=$1
  total=0
  for dir in src/zitadel dev-idp; do
    n=$(git ls-tree -r --name-only "$rev" "$dir" | grep '\.ts$' | grep -v '\.spec\.ts$' |
      while read -r f; do git show "$rev:$f"; done | grep -cvE '^(<<<<<<<|=======|>>>>>>>)( |$)')
    echo "$dir: $n"
    total=$((total + n))
  done
  echo "total: $total"
}

if [ "${1:-}" = "--equal-features" ]; then
  tree=$(git merge-tree --write-tree ab20fe5 e85b944 | head -n 1)
  echo "before issue 16, with issues 19 and 20 (ab20fe5 + e85b944 merged):"
  count_tree "$tree"
else
  count_tree "${1:-HEAD}"
fi
