"""The `key-rotation` function (handler `index.handler`); `make build` packages the folder without this file."""
