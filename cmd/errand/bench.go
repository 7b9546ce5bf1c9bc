package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newBenchCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Benchmarks", Hidden: true}
}
