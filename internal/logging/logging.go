// Package logging builds the process's *slog.Logger: native journal entries
// with structured fields when stderr is connected to systemd's journal, plain
// slog text on stderr otherwise.
package logging

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
)

// New returns the logger for the process. When stderr is the journal's
// stream (JOURNAL_STREAM matches stderr's device and inode) and the journal
// socket accepts datagrams, entries go to the journal natively through
// NewJournalHandler; otherwise they are written by a slog.TextHandler to
// stderr. level is consulted on every record, so a reload can change it.
//
// New is part of the systemd glue: it is the one place outside config and sd
// that reads the environment (JOURNAL_STREAM, set by systemd).
func New(level *slog.LevelVar) *slog.Logger {
	if IsJournalStream(os.Stderr, os.Getenv("JOURNAL_STREAM")) && journal.Enabled() {
		return slog.New(NewJournalHandler(level, journal.Send))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// IsJournalStream reports whether stderr is the stream that systemd connected
// to the journal, given the value of JOURNAL_STREAM ("<device>:<inode>",
// both decimal). It is false when journalStream is empty or malformed, or
// when stderr cannot be examined.
func IsJournalStream(stderr *os.File, journalStream string) bool {
	if journalStream == "" || stderr == nil {
		return false
	}
	devText, inoText, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	dev, err := strconv.ParseUint(devText, 10, 64)
	if err != nil {
		return false
	}
	ino, err := strconv.ParseUint(inoText, 10, 64)
	if err != nil {
		return false
	}
	info, err := stderr.Stat()
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}
