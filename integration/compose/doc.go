// Package compose tests docker-compose.yml the way the README's "Local
// development with Docker" section uses it: its command block, run word for
// word from the host (TestComposeUp), and every other `docker compose`
// command of the README and of the compose file's comments.
package compose
