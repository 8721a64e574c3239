#!/bin/sh
# Fails when a source file with translatable strings (_(" or N_(" or a
# translatable="yes" property) is missing from po/POTFILES.in, or when
# POTFILES.in names a file that does not exist.
root=${1:-.}
cd "$root" || exit 1
status=0
listed=$(grep -v '^#' po/POTFILES.in | sed '/^$/d')
for f in $listed; do
  [ -f "$f" ] || { echo "po/POTFILES.in names $f, which does not exist"; status=1; }
done
for f in $(grep -rlE '(^|[^A-Za-z0-9_])N?_ \(|(^|[^A-Za-z0-9_])N?_\("|translatable="yes"' --include='*.c' --include='*.ui' app ui viz 2>/dev/null | sort); do
  echo "$listed" | grep -qx "$f" || { echo "$f has translatable strings but is not in po/POTFILES.in"; status=1; }
done
[ $status -eq 0 ] && echo "POTFILES.in is complete"
exit $status
