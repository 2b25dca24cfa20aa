//! urumictl (being written).

fn main() {}
