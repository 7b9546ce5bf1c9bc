package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func newRootCmd(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "errand",
		Short:         "A hybrid sync/async API gateway: durable jobs over HTTP, leased by workers in any language",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(getenv, stderr), newDemoCmd(stdout, stderr), newVersionCmd(stdout), newBenchCmd(getenv, stdout, stderr),
		newKeysCmd(getenv, stdout), newMigrateCmd(getenv, stdout, stderr), newCopyCmd(stdout, stderr),
		newSpecCmd(getenv, stdout))
	// The commands that talk to a server share --server, --token and --output.
	var cf clientFlags
	for _, c := range []*cobra.Command{newSubmitCmd(&cf, stdin, stdout), newJobsCmd(&cf, stdout, stderr),
		newOperationsCmd(&cf, stdout), newWorkerCmd(&cf, stderr), newAuditCmd(&cf, stdout), newUsageCmd(&cf, stdout)} {
		cf.add(c, getenv)
		root.AddCommand(c)
	}
	return root
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print errand's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(stdout, "errand %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
