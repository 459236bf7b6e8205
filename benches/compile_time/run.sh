#!/usr/bin/env bash
# Compile time of ndf's macros against the same code written by hand
# (issue 15): a crate of 50 `#[pattern]` steps (retries and a timeout each)
# and ten five-step `sequential!` workflows, and the same steps as plain
# async fns with a retry loop and `tokio::time::timeout`. Each crate is
# built clean (its dependencies prebuilt) in debug and in release; prints
# the seconds and the ratios.
#
#   benches/compile_time/run.sh            # from the repository root
#   RUNS=3 PROFILES=debug benches/compile_time/run.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${CARGO_TARGET_DIR:-$root/target}/compile-time"
mkdir -p "$work"
export CARGO_TARGET_DIR="$work/target"

steps=50
workflows=10
names=(alpha bravo charlie delta echo foxtrot golf hotel india juliet)

manifest() {
  cat <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
path = "lib.rs"

[dependencies]
ndf = { path = "$root/ndf" }
tokio = { version = "1", features = ["time", "rt", "macros"] }

[workspace]
TOML
}

# `pub fn run_all($1) -> u64`, which awaits every workflow (`$3`, in which
# `$w` is the workflow's number) after `$2`: used, so that every
# workflow's state machine is generated, not only checked.
run_all() {
  echo "pub fn run_all($1) -> u64 {"
  echo "    $2"
  echo "    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();"
  echo "    rt.block_on(async {"
  echo "        let mut total = 0u64;"
  for w in $(seq 0 $((workflows - 1))); do
    echo "        total = total.wrapping_add(${3//\$w/$w}.await.unwrap_or(0));"
  done
  echo "        total"
  echo "    })"
  echo "}"
}

gen_ndf() {
  echo "use ndf::prelude::*;"
  for i in $(seq 0 $((steps - 1))); do
    cat <<RS
#[pattern(timeout = "5s", retries = 3)]
pub async fn step_$i(x: u64) -> Result<u64, StepError> {
    Ok(x.wrapping_mul($i + 1).wrapping_add(1))
}
RS
  done
  for w in $(seq 0 $((workflows - 1))); do
    b=$((w * 5))
    echo "pub fn flow_$w() -> impl Workflow<Input = u64, Output = u64> + Copy {"
    echo "    sequential!(name = \"bench.route_${names[$w]}\"; step_$b => step_$((b + 1)) => step_$((b + 2)) => step_$((b + 3)) => step_$((b + 4)))"
    echo "}"
  done
  run_all "ndf: &Ndf" "let ctx = PatternContext::new(\"bench\");" 'ndf.run(&flow_$w(), $w, &ctx)'
}

gen_hand() {
  cat <<'RS'
use std::time::Duration;

#[derive(Debug)]
pub enum Failure {
    Step(String),
    Timeout,
}

async fn retrying<F, Fut>(mut attempt: F) -> Result<u64, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, String>>,
{
    let mut delay = Duration::from_millis(100);
    for n in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), attempt()).await {
            Ok(Ok(out)) => return Ok(out),
            Ok(Err(e)) if n == 3 => return Err(Failure::Step(e)),
            Err(_) if n == 3 => return Err(Failure::Timeout),
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    Err(Failure::Timeout)
}
RS
  for i in $(seq 0 $((steps - 1))); do
    cat <<RS
async fn body_$i(x: u64) -> Result<u64, String> {
    Ok(x.wrapping_mul($i + 1).wrapping_add(1))
}
pub async fn step_$i(x: u64) -> Result<u64, Failure> {
    retrying(|| body_$i(x)).await
}
RS
  done
  for w in $(seq 0 $((workflows - 1))); do
    b=$((w * 5))
    echo "pub async fn flow_$w(x: u64) -> Result<u64, Failure> {"
    echo "    let x = step_$b(x).await?; let x = step_$((b + 1))(x).await?; let x = step_$((b + 2))(x).await?;"
    echo "    let x = step_$((b + 3))(x).await?; step_$((b + 4))(x).await"
    echo "}"
  done
  run_all "" "" 'flow_$w($w)'
}

for kind in ndf hand; do
  dir="$work/gen_$kind"
  mkdir -p "$dir"
  manifest "gen_$kind" > "$dir/Cargo.toml"
  "gen_$kind" > "$dir/lib.rs"
done

# Seconds to build crate `$1` clean in profile `$2` (its dependencies built
# first, untimed).
build_time() {
  local dir="$work/gen_$1" flag=""
  [ "$2" = release ] && flag="--release"
  (cd "$dir" && cargo build -q $flag) || { echo "gen_$1 does not build" >&2; exit 1; }
  (cd "$dir" && cargo clean -q -p "gen_$1" $flag)
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && cargo build -q $flag) || { echo "gen_$1 does not build" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

# The median of the numbers given.
median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One build takes a second or two, and this machine's timings of the same
# build vary by 10-20 %: each crate is built `RUNS` times (5 unless set),
# the two crates' builds interleaved so that both see the same load, and
# the medians compared. Every time is printed.
runs="${RUNS:-5}"
for profile in ${PROFILES:-debug release}; do
  ns=() hs=()
  for _ in $(seq "$runs"); do
    ns+=("$(build_time ndf "$profile")") || exit 1
    hs+=("$(build_time hand "$profile")") || exit 1
  done
  n=$(median "${ns[@]}")
  h=$(median "${hs[@]}")
  ratio=$(echo "scale=2; $n / $h" | bc)
  printf 'compile time, %s: ndf %.2f s, hand-written %.2f s (medians of %s builds), ratio %s\n' "$profile" "$n" "$h" "$runs" "$ratio"
  printf '  ndf: %s\n  hand-written: %s\n' "${ns[*]}" "${hs[*]}"
done
