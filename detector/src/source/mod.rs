//! Where bytes come from: fs (dirs, dotfiles, archives), git (history), image (docker/OCI), mcp (client configs). A source never knows about rules.
