"""The `user-requested` function (handler `index.handler`); `make build` packages the folder without this file."""
