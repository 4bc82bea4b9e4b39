-- The service's own database and role (Zitadel creates its own with its admin credentials).
CREATE ROLE users_api LOGIN PASSWORD 'users_api';
CREATE DATABASE users_api OWNER users_api;
