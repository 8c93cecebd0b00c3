package agent

// slipagent runs on Linux and macOS (the README's "Platforms"): it runs
// hooks and checks in a process group of their own and kills the group,
// which Windows does not have. A build for Windows stops here, with this
// identifier as its message. (The file name sorts before the others, so
// this is the first error the compiler prints.)
var _ = slipagent_does_not_support_Windows__it_runs_on_Linux_and_macOS__see_Platforms_in_README
