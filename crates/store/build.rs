// The migrations are embedded at compile time (sqlx::migrate!): a new or changed file must
// rebuild the crate, or an incremental build would run without it (sqlx's own advice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
