package main

import (
	"strings"
	"testing"
)

func TestPackageVersion(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"release", "1.2.3", "1.2.3"},
		{"tag with v", "v1.2.3", "1.2.3"},
		{"pre-release sorts before", "v1.2.3-rc1", "1.2.3~rc1"},
		{"commits after a tag sort after", "v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"dirty tree", "v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"no tag yet", "4d4e359-dirty", "0.0.0~4d4e359.dirty"},
		{"no tag, digits only", "1234567", "0.0.0~1234567"},
		{"dev", "dev", "0.0.0~dev"},
		{"goreleaser snapshot", "1.2.4-SNAPSHOT-abc1234", "1.2.4~SNAPSHOT.abc1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := packageVersion(tt.input); got != tt.want {
				t.Errorf("packageVersion(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

const goreleaserConfig = `
project_name: demo
nfpms:
  - id: packages
    formats: [deb, rpm]
    bindir: /usr/sbin
    file_name_template: "{{ .ConventionalFileName }}"
    maintainer: Someone <someone@example.org>
    dependencies: [systemd]
    overrides:
      rpm:
        dependencies: [util-linux]
    contents:
      - src: etc/demo.env
        dst: /etc/demo.env
        type: config|noreplace
        file_info:
          mode: 0640
`

func TestConvert(t *testing.T) {
	out, err := convert([]byte(goreleaserConfig), options{version: "v1.0.0", arch: "arm", binary: "bin/demo"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"name: demo\n", "arch: arm7\n", "version: 1.0.0\n", "version_schema: none\n",
		"depends: [systemd]\n", "rpm:\n    depends: [util-linux]\n",
		"  - src: bin/demo\n    dst: /usr/sbin/demo\n", "mode: 0640\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"formats", "bindir", "file_name_template", "dependencies", "id: packages"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has goreleaser's %q:\n%s", unwanted, got)
		}
	}
}

func TestConvertRejectsTemplates(t *testing.T) {
	src := strings.Replace(goreleaserConfig, "Someone", "{{ .Env.USER }}", 1)
	if _, err := convert([]byte(src), options{version: "1.0.0", arch: "amd64", binary: "bin/demo"}); err == nil {
		t.Fatal("convert accepted a goreleaser template")
	}
}
