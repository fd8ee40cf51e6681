package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/duplexws/duplex/gateway"
)

// devTokenFile is where duplex serve keeps the token it generates when
// no authentication is configured, under the user's configuration
// directory ($XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application
// Support on macOS, %AppData% on Windows). Keeping it lets a restart of
// "go run ./cmd/duplex serve" keep an open demo page working (issue 17).
const devTokenFile = "duplex/dev-token"

// devToken returns the development token and the file that keeps it,
// creating both the first time (directory 0700, file 0600). When the
// configuration directory cannot be used, it returns a token for this run
// only, an empty path, and why.
func devToken() (token, path string, keepErr error) {
	dir, err := os.UserConfigDir()
	if err == nil {
		path = filepath.Join(dir, filepath.FromSlash(devTokenFile))
		token, err = readDevToken(path)
		if err == nil {
			return token, path, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			token, err = writeDevToken(path)
			if err == nil {
				return token, path, nil
			}
		}
	}
	token, genErr := gateway.GenerateToken()
	if genErr != nil {
		return "", "", genErr
	}
	return token, "", err
}

// readDevToken reads a token written by writeDevToken. A file others can
// read, or that does not hold a token, is an error: duplex serve does not
// use a token that may have leaked, nor one it cannot vouch for.
func readDevToken(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by other users (mode %v); delete it for a new token", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 || strings.Trim(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", fmt.Errorf("%s does not hold a token; delete it for a new one", path)
	}
	return token, nil
}

// writeDevToken generates a token and stores it at path, failing if the
// file appeared meanwhile (another duplex serve starting at once).
func writeDevToken(path string) (string, error) {
	token, err := gateway.GenerateToken()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readDevToken(path)
	}
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(token + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return token, nil
}
