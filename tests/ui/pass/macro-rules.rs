// Steps and workflows written inside `macro_rules!`: the generated code must
// not mix the macro's hygiene with its own.
use ndf::prelude::*;

macro_rules! steps {
    ($($name:ident => $undo:ident),*) => {$(
        #[pattern(retries = 1, compensate = $undo, timeout = "1s")]
        async fn $name(x: u64) -> u64 {
            x + 1
        }

        #[pattern]
        async fn $undo(x: u64) {
            let _ = x;
        }
    )*};
}

steps!(first => undo_first, second => undo_second);

macro_rules! pipeline {
    ($a:path, $b:path) => {
        sequential!(name = "ops.generated"; $a => parallel!(max_concurrent = 1; $b, $b))
    };
}

fn main() {
    let flow = pipeline!(first, second);
    let _ = flow.name();
}
