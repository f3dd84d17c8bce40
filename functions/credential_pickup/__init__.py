"""The `credential-pickup` function (handler `index.handler`); `make build` packages the folder without this file."""
