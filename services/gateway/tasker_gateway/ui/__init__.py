"""The web dashboard served at /ui: pages, their JSON reads, live updates and diagnoses."""
