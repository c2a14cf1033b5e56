#!/bin/bash
# Drop-in test: real programs run with and without LD_PRELOAD=libbitslab.so;
# their outputs must be identical (and each must really have bitslab loaded).
set -u
lib="$(readlink -f "$1")"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
passed=0

# run_case NAME COMMAND: runs COMMAND in a fresh directory twice and compares.
run_case() {
  local name="$1" cmd="$2"
  for mode in plain preload; do
    rm -rf "$work/$mode-$name"; mkdir -p "$work/$mode-$name"
    if [ "$mode" = preload ]; then
      (cd "$work/$mode-$name" && LD_PRELOAD="$lib" bash -c "$cmd") > "$work/$mode-$name.out" 2>&1
    else
      (cd "$work/$mode-$name" && bash -c "$cmd") > "$work/$mode-$name.out" 2>&1
    fi
    echo "exit=$?" >> "$work/$mode-$name.out"
  done
  if cmp -s "$work/plain-$name.out" "$work/preload-$name.out"; then
    echo "ok   $name ($(wc -l < "$work/plain-$name.out") lines of output identical)"
    passed=$((passed + 1))
  else
    echo "FAIL $name: output differs under bitslab"
    diff "$work/plain-$name.out" "$work/preload-$name.out" | head -20
    failures=$((failures + 1))
  fi
}

# Proof that the preload takes effect: the library is mapped in the process.
if ! LD_PRELOAD="$lib" python3 -c "import sys; sys.exit(0 if 'libbitslab' in open('/proc/self/maps').read() else 1)"; then
  echo "FAIL: libbitslab.so is not mapped into a preloaded python3"; exit 1
fi

run_case python3 'python3 - <<"PY"
import json, hashlib, random, re, collections
random.seed(7)
d = {f"k{i}": [random.random() for _ in range(i % 50)] for i in range(40000)}
s = json.dumps(d, sort_keys=True)
back = json.loads(s)
words = re.findall(r"k\d+", s)
c = collections.Counter(w[-2:] for w in words)
big = "".join(str(x) for x in range(200000))
print(len(s), len(back), hashlib.sha256(s.encode()).hexdigest(), c.most_common(3), len(big))
class Node:
    __slots__ = ("v", "next")
    def __init__(s, v, n): s.v = v; s.next = n
head = None
for i in range(300000): head = Node(i, head)
n = 0
while head: n += head.v; head = head.next
print(n)
PY'

run_case gxx-compile "g++ -std=c++20 -O2 -S -o - -I'$repo' '$repo/core/size_class.cpp' '$repo/tests/size_class_test.cpp' -I/usr/include 2>&1 | grep -v '^\s*\.ident' | md5sum"

run_case sqlite3 'sqlite3 :memory: <<"SQL"
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INT, val REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, printf("name-%d-%d", x, x*x), x % 97, x * 1.5 FROM c;
CREATE INDEX t_grp ON t(grp, val);
SELECT grp, count(*), sum(val), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT count(DISTINCT name), group_concat(substr(name, 1, 3), "") IS NOT NULL FROM t;
UPDATE t SET name = name || name WHERE id % 3 = 0;
SELECT sum(length(name)) FROM t;
SQL'

run_case git 'export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
git init -q -b main repo && cd repo
for i in $(seq 1 40); do seq 1 $((i * 500)) > f$i.txt; git add f$i.txt; git commit -qm "c$i"; done
git log --stat --format="%H %s" | md5sum
git gc -q --aggressive && git fsck --full 2>&1 && git count-objects -v | grep -v size
git diff HEAD~20 HEAD --stat | tail -1'

run_case perl 'perl -e "my %h; for my \$i (1..300000) { \$h{\"k\$i\"} = [\$i, \$i*2, \"v\" x (\$i % 40)]; } my \$s = 0; for my \$k (sort keys %h) { \$s += \$h{\$k}[1] + length \$h{\$k}[2]; } my @w = map { scalar reverse \$_ } sort { \$a <=> \$b } map { \$_ * 7 % 100003 } 1..200000; print \"\$s \", scalar(@w), \" \$w[0] \$w[-1]\\n\";"'

run_case sort-coreutils 'seq 1 300000 | awk "{print (\$1 * 7919) % 1000003, \"line\" \$1}" > in.txt; sort in.txt | md5sum; sort -n -k1,1 in.txt | md5sum; sort -u -k2 in.txt | wc -l'

run_case tar-gzip 'mkdir d; for i in $(seq 1 200); do seq $i 3 $((i * 300)) > d/f$i; done; tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 -cf a.tar d && gzip -9 -n -c a.tar | md5sum && tar -tf a.tar | wc -l'

run_case awk 'seq 1 200000 | awk "{ w[\$1 % 1000] = w[\$1 % 1000] \" \" \$1 } END { n = 0; for (k in w) n += length(w[k]); print n, length(w) }"'

echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
