# Shared by the bench scripts.

# A java of version 25 or later: JAVA_HOME's if it is one, else one installed under /usr/lib/jvm.
java25() {
  local candidate
  for candidate in "${JAVA_HOME:-/nonexistent}/bin/java" /usr/lib/jvm/*/bin/java "$(command -v java || true)"; do
    [ -x "$candidate" ] || continue
    local major
    major=$("$candidate" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
    if [ "${major:-0}" -ge 25 ] 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "bench: no Java 25 found (set JAVA_HOME)" >&2
  return 1
}
