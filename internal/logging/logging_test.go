package logging

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

// devIno returns f's device and inode numbers.
func devIno(t *testing.T, f *os.File) (dev, ino uint64) {
	t.Helper()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), uint64(st.Ino)
}

func TestIsJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dev, ino := devIno(t, f)

	closed, err := os.Create(filepath.Join(t.TempDir(), "closed"))
	if err != nil {
		t.Fatal(err)
	}
	closedDev, closedIno := devIno(t, closed)
	closed.Close()

	tests := []struct {
		name   string
		file   *os.File
		stream string
		want   bool
	}{
		{"match", f, fmt.Sprintf("%d:%d", dev, ino), true},
		{"other inode", f, fmt.Sprintf("%d:%d", dev, ino+1), false},
		{"other device", f, fmt.Sprintf("%d:%d", dev+1, ino), false},
		{"unset", f, "", false},
		{"no colon", f, fmt.Sprint(dev), false},
		{"not numbers", f, "dev:ino", false},
		{"trailing text", f, fmt.Sprintf("%d:%d:1", dev, ino), false},
		{"space", f, fmt.Sprintf("%d:%d ", dev, ino), false},
		{"negative", f, fmt.Sprintf("-%d:%d", dev, ino), false},
		{"nil file", nil, fmt.Sprintf("%d:%d", dev, ino), false},
		{"closed file", closed, fmt.Sprintf("%d:%d", closedDev, closedIno), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsJournalStream(tt.file, tt.stream); got != tt.want {
				t.Errorf("IsJournalStream(%q) = %v, want %v", tt.stream, got, tt.want)
			}
		})
	}
}

func TestNewChoosesHandler(t *testing.T) {
	dev, ino := devIno(t, os.Stderr)
	journalUp := journal.Enabled()
	tests := []struct {
		name        string
		stream      string
		wantJournal bool
	}{
		{"not under systemd", "", false},
		{"stderr elsewhere", fmt.Sprintf("%d:%d", dev, ino+1), false},
		// Here stderr is the journal stream; the journal socket decides.
		{"stderr is the journal", fmt.Sprintf("%d:%d", dev, ino), journalUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			var level slog.LevelVar
			h := New(&level).Handler()
			_, isJournal := h.(*journalHandler)
			_, isText := h.(*slog.TextHandler)
			if isJournal != tt.wantJournal || isText == tt.wantJournal {
				t.Errorf("New chose %T (journal socket available: %v)", h, journalUp)
			}
			level.Set(slog.LevelDebug)
			if !h.Enabled(t.Context(), slog.LevelDebug) {
				t.Error("handler does not follow the LevelVar")
			}
		})
	}
}
