"""The `user-offboarded` function (handler `index.handler`); `make build` packages the folder without this file."""
