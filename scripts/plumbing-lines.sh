#!/bin/sh
# Lines of hand-written Zitadel plumbing: the non-spec .ts files of src/zitadel (the client) and dev-idp (the
# stand-in), as committed at a revision (default HEAD). `npm run plumbing:lines [-- <rev>]`; the figure before
# issue 16 is `npm run plumbing:lines -- edb7b75~1`.
rev=${1:-HEAD}
total=0
for dir in src/zitadel dev-idp; do
  n=$(git ls-tree -r --name-only "$rev" "$dir" | grep '\.ts$' | grep -v '\.spec\.ts$' |
    while read -r f; do git show "$rev:$f"; done | wc -l)
  echo "$dir: $n"
  total=$((total + n))
done
echo "total: $total"
