"""Storage: the only package that speaks SQL (SQLAlchemy) or Chroma. It never imports Slack code."""
