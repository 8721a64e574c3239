#!/bin/sh
# Fails when a translation has untranslated or fuzzy messages, or does not compile.
po=$1
out=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$po" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
case "$out" in
  *untranslated*|*fuzzy*) exit 1 ;;
esac
exit 0
