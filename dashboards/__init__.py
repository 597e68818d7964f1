"""The platform's face for people and apps: Streamlit dashboards, citizen API, and the data layer."""
