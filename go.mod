module github.com/duplexws/duplex

go 1.26.8
