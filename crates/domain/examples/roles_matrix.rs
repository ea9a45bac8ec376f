//! Prints the role/permission matrix as Markdown, for docs/roles.md.
fn main() {
    print!("{}", seldinger_domain::access::matrix_markdown());
}
