// audio: the PulseAudio and PipeWire sockets, OSS and ALSA devices, /proc/asound.
import { permissionMapper } from "../perms/index.ts";

export const audioPermission = permissionMapper({ name: "audio", bit: 2, order: 3 }, ({ xdg }) => [
  { op: "bind", mode: "rw", source: `${xdg}/pulse/native`, dest: `${xdg}/pulse/native`, optional: true },
  { op: "setenv", name: "PULSE_SERVER", value: `unix:${xdg}/pulse/native` },
  { op: "bind", mode: "rw", source: `${xdg}/pipewire-0`, dest: `${xdg}/pipewire-0`, optional: true },
  { op: "bind", mode: "dev", source: "/dev/dsp", dest: "/dev/dsp", optional: true },
  // A device bind (upstream's plain bind could leave /dev/snd nodev, unusable).
  { op: "bind", mode: "dev", source: "/dev/snd", dest: "/dev/snd", optional: true },
  { op: "bind", mode: "rw", source: "/proc/asound", dest: "/proc/asound", optional: true },
]);
