export * from "./backupSystem";
export * from "./config";
export * from "./image/jobImage";
export * from "./jobEnv";
export * from "./kubernetes";
export * from "./loadConfig";
export * from "./storage";
