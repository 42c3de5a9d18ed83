//! Build script: rebuild when a migration is added (sqlx's `migrate!` embeds the files it saw).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
