#!/bin/sh
# Renders one line per input file: its name and its first line, upper-cased.
for file in "$@"; do
    name=$(basename "$file" .txt)
    first=$(head -n 1 "$file" | tr 'a-z' 'A-Z')
    echo "$name: $first"
done
