"""Partners' credentials, OAuth2 access tokens and the checks Connexion runs on every call."""
