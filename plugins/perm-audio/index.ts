// audio: the PulseAudio and PipeWire sockets, OSS and ALSA devices, /proc/asound.
import { permissionMapper } from "../perms/index.ts";

export const audioPermission = permissionMapper("audio", ({ xdg }) => [
  ["--bind-try", `${xdg}/pulse/native`, `${xdg}/pulse/native`],
  ["--setenv", "PULSE_SERVER", `unix:${xdg}/pulse/native`],
  ["--bind-try", `${xdg}/pipewire-0`, `${xdg}/pipewire-0`],
  ["--dev-bind-try", "/dev/dsp", "/dev/dsp"],
  // A device bind (upstream's plain bind could leave /dev/snd nodev, unusable).
  ["--dev-bind-try", "/dev/snd", "/dev/snd"],
  ["--bind-try", "/proc/asound", "/proc/asound"],
]);
