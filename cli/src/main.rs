fn main() -> std::process::ExitCode {
    lightchain_cli::main()
}
