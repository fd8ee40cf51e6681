package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Command is one subcommand. Run parses args (the words after the
// command's name) itself and returns the process exit status, so a test can
// call it with pipes and buffers.
type Command struct {
	Name  string // what the user types: "connect"
	Usage string // the synopsis after "duplex": "connect [flags] URL"
	Short string // one line for `duplex help`
	Long  string // the description printed above the flags by --help
	Run   func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// Exit statuses shared by the commands. Each command's --help lists the
// ones it uses.
const (
	exitOK          = 0
	exitError       = 1   // the connection or the server failed
	exitUsage       = 2   // bad flags or arguments
	exitRefused     = 3   // the server refused the WebSocket handshake
	exitPeerClosed  = 4   // the peer closed with a code other than 1000 or 1001
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM (128 + SIGINT)
)

// commands lists the subcommands in the order `duplex help` shows them.
var commands = []*Command{serveCommand, connectCommand, benchCommand, versionCommand}

// run is the whole program but for the process: it dispatches args (without
// the program name) to a command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(rest) > 0 {
			cmd := findCommand(rest[0])
			if cmd == nil {
				fmt.Fprintf(stderr, "duplex: unknown command %q; run 'duplex help'\n", rest[0])
				return exitUsage
			}
			return cmd.Run(ctx, []string{"--help"}, stdin, stdout, stderr)
		}
		printMainUsage(stdout)
		return exitOK
	case "--version", "-version":
		return versionCommand.Run(ctx, rest, stdin, stdout, stderr)
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "duplex: unknown command %q; run 'duplex help'\n", name)
		return exitUsage
	}
	return cmd.Run(ctx, rest, stdin, stdout, stderr)
}

func findCommand(name string) *Command {
	for _, c := range commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func printMainUsage(w io.Writer) {
	fmt.Fprint(w, "duplex: WebSocket server and client tools.\n\nUsage:\n  duplex COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Short)
	}
	fmt.Fprint(w, "  help       show this text, or a command's with 'duplex help COMMAND'\n\n")
	fmt.Fprint(w, "Run 'duplex COMMAND --help' for a command's flags, environment and exit status,\n'duplex --version' for the version.\n")
}

// flagSet returns a FlagSet for cmd that reports errors instead of
// exiting, and prints cmd's full help to stdout for -h and --help.
//
// A command whose Run calls these methods sets Run in an init function:
// in the Command literal it would make an initialization cycle.
func (cmd *Command) flagSet(stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	// The flag package calls Usage for -h and after printing a parse
	// error to Output; parse reports errors itself, so Usage prints the
	// help only when no error came first.
	var errs errorSink
	fs.SetOutput(&errs)
	fs.Usage = func() {
		if !errs.wrote {
			cmd.printHelp(stdout, fs)
		}
	}
	return fs
}

// errorSink swallows the flag package's error messages and notes that one
// was written.
type errorSink struct{ wrote bool }

func (e *errorSink) Write(p []byte) (int, error) {
	e.wrote = true
	return len(p), nil
}

// parse parses args, letting flags and arguments mix ("connect URL -v"
// as well as "connect -v URL"); "--" ends the flags. It returns the
// arguments, and done with the exit status when the command must stop at
// once: exitOK after printing help, exitUsage after reporting an error on
// stderr.
func (cmd *Command) parse(fs *flag.FlagSet, args []string, stderr io.Writer) (positional []string, code int, done bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, true
		}
		if err != nil {
			return nil, cmd.usageError(stderr, "%v", err), true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, 0, false
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), 0, false
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError reports a usage mistake on stderr and returns exitUsage.
func (cmd *Command) usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "duplex %s: %s\nusage: duplex %s (see duplex %s --help)\n",
		cmd.Name, fmt.Sprintf(format, args...), cmd.Usage, cmd.Name)
	return exitUsage
}

// printHelp prints the usage line, the long description, and every flag
// of fs. Long may hold a "%FLAGS%" line to place the flags; otherwise they
// come last.
func (cmd *Command) printHelp(w io.Writer, fs *flag.FlagSet) {
	var flags strings.Builder
	flags.WriteString("Flags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		typ, usage := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(&flags, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			fmt.Fprintf(&flags, " (default %s)", f.DefValue)
		}
		flags.WriteString("\n")
	})
	long := strings.TrimSpace(cmd.Long)
	fmt.Fprintf(w, "Usage: duplex %s\n\n", cmd.Usage)
	if strings.Contains(long, "%FLAGS%") {
		fmt.Fprintln(w, strings.Replace(long, "%FLAGS%", strings.TrimSpace(flags.String()), 1))
		return
	}
	fmt.Fprintf(w, "%s\n\n%s", long, flags.String())
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// isTerminal reports whether f is a character device, which for stdin and
// stdout means a terminal, without a dependency on x/term.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
