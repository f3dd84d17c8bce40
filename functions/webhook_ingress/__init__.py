"""The `webhook-ingress` function (handler `index.handler`); `make build` packages the folder without this file."""
