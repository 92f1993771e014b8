fn main() {
    std::process::exit(scorecard::cli::main());
}
