# Command-line handling; no guest runs. probe LABEL zero|nonzero MESSAGE-ERE ARGS...
probe() {
  label=$1; want=$2; re=$3; shift 3
  out=$(dm "$@" 2>&1 </dev/null); rc=$(echo "$out" | sed -n 's/^@@dm-exit rc=//p')
  echo "$out" | grep -v '^@@' | head -3 | sed "s/^/  $label| /"
  case $want in zero) [ "$rc" = 0 ] ;; nonzero) [ -n "$rc" ] && [ "$rc" != 0 ] ;; esac && rcok=yes || rcok=no
  echo "$out" | grep -v '^@@' | grep -Eqi -- "$re" && msgok=yes || msgok=no
  echo "probe $label: rc-ok=$rcok message-ok=$msgok (rc=$rc)"
}
probe unknown-option nonzero 'frobnicate' -frobnicate
probe missing-value nonzero '(^|[^a-z])-m([^a-z]|$)' -m
probe version zero '[0-9]+\.[0-9]+' --version
probe help zero 'usage' --help
